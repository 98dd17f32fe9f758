#!/usr/bin/env python3
"""A ringmaster agent in Python, speaking the hosted escrow REST dialect.

It uses the same calls as the hosted dialect's Python samples (one shared httpx
client with a short connect timeout, `amount_usdc` as a JSON float, `metadata`
with `fly_region` and a float `ts`), so an agent written for the hosted service
runs against a ringmaster settlement service by changing only ESCROW_BASE.

The run: register a payer and a payee (the payee referred by the payer), claim
the faucet for the payer, let the payer grant the payee a mandate, then the
payee bills the payer for one task that succeeds (create, then release) and one
that fails (create, then cancel: the payer is refunded). It ends by printing
one JSON line with both balances and the payer's referral earnings.

With ORCHESTRATOR_URL set (a ringmaster orchestrator service), the payer also buys
one inference the way every paid route is bought: the request is answered
`402 Payment Required` with a `WWW-Authenticate: Payment ...` challenge naming the
price and the payee; the payer mints a single-use payment token for exactly that
on the settlement service (with its own API key), and retries with
`Authorization: Payment <token>`. Naming a wallet never pays: the token does.

Run:  ESCROW_BASE=http://127.0.0.1:8080 /usr/bin/python3 examples/python/agent_client.py
Needs only httpx (Debian: apt-get install python3-httpx). Exits 1 on any
unexpected HTTP status, printing the status and the server's error body.
"""
import json
import os
import sys
import time

import httpx

ESCROW_BASE = os.getenv("ESCROW_BASE", "http://127.0.0.1:8080").rstrip("/")
FLY_REGION = os.getenv("FLY_REGION", "local")
ORCHESTRATOR_URL = os.getenv("ORCHESTRATOR_URL", "").rstrip("/")

# Shared client: created once, not per request. Cold-start safe: a short connect
# timeout, a generous read timeout, so a call never blocks the agent for long.
http = httpx.Client(
    timeout=httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=1.0),
    limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
)


class UnexpectedStatus(Exception):
    def __init__(self, method: str, path: str, want: int, response: httpx.Response):
        super().__init__(f"{method} {path}: expected HTTP {want}, got {response.status_code}: {response.text[:500]}")


def call(method: str, path: str, want: int, api_key: str | None = None, body: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    r = http.request(method, f"{ESCROW_BASE}{path}", json=body, headers=headers)
    if r.status_code != want:
        raise UnexpectedStatus(method, path, want, r)
    return r.json()


def log(message: str) -> None:
    print(f"[python-agent] {message}", file=sys.stderr, flush=True)


# The hosted dialect's escrow calls, as in its samples; the API key is passed in
# because this one script plays two agents.
def create_escrow(api_key: str, payer: str, payee: str, amount: float, desc: str) -> str:
    return call("POST", "/api/escrow/create", 201, api_key, {
        "payer_wallet": payer,
        "payee_wallet": payee,
        "amount_usdc": amount,
        "description": desc,
        "metadata": {"fly_region": FLY_REGION, "ts": time.time()},
    })["escrow_id"]


def release_escrow(api_key: str, escrow_id: str) -> dict:
    return call("POST", "/api/escrow/release", 200, api_key, {"escrow_id": escrow_id, "auto_release": True})


def cancel_escrow(api_key: str, escrow_id: str) -> dict:
    return call("POST", "/api/escrow/cancel", 200, api_key, {"escrow_id": escrow_id})


def paid_request(url: str, body: dict, payer_key: str) -> dict:
    """A paid route, bought with a payment token: request, 402 challenge, mint, retry."""
    first = http.post(url, json=body)
    if first.status_code != 402:
        raise UnexpectedStatus("POST", url, 402, first)
    challenge = first.json()  # error, price_usdc, payee_wallet, token_endpoint, ...
    log(f"402: {first.headers.get('www-authenticate')}")
    # The token: for this payee, at most this price, short-lived, single use.
    minted = call("POST", "/api/payment-tokens", 201, payer_key, {
        "payee_wallet": challenge["payee_wallet"],
        "max_amount_usdc": challenge["price_usdc"],
        "expires_in_seconds": 60,
    })
    retry = http.post(url, json=body, headers={"Authorization": f"Payment {minted['payment_token']}"})
    if retry.status_code != 200:
        raise UnexpectedStatus("POST", url, 200, retry)
    return {"challenge": {"status": first.status_code, **challenge,
                          "www_authenticate": first.headers.get("www-authenticate")},
            "paid": retry.json()}


def inference_cost(prompt: str) -> float:
    # The samples' per-request price. 42,000 characters cost 0.42000000000000004 as
    # a float: the server must read that as exactly 0.42 USDC.
    return max(0.001, len(prompt) * 0.00001)


def main() -> int:
    # Pre-warm the connection; a failure here is not fatal (the next call reports it).
    try:
        http.get(f"{ESCROW_BASE}/health", timeout=5.0)
    except Exception:
        pass

    tag = f"{int(time.time() * 1000)}-{os.getpid()}"
    payer = call("POST", "/api/agents", 201, body={"agent_name": f"py-orchestrator-{tag}"})
    payee = call("POST", "/api/agents", 201, body={
        "agent_name": f"py-worker-{tag}",
        "referral_code": payer["referral_code"],
    })
    log(f"registered payer {payer['wallet_address']} and payee {payee['wallet_address']}")

    faucet = call("POST", "/api/faucet/claim", 200, payer["api_key"], {
        "wallet_address": payer["wallet_address"],
        "agent_name": f"py-orchestrator-{tag}",
    })
    log(f"faucet credited {faucet['credited_usdc']}")

    mandate = call("POST", "/api/mandates", 201, payer["api_key"], {
        "payee_wallet": payee["wallet_address"],
        "max_amount_usdc": "0.50",
        "budget_usdc": "0.80",
    })

    # A task that succeeds: the payee opens the escrow under the mandate, does the
    # work, and releases it (payee pays the 1% fee; the payer, as the payee's
    # referrer, earns 15% of that fee).
    paid_cost = inference_cost("x" * 42_000)
    paid_id = create_escrow(payee["api_key"], payer["wallet_address"], payee["wallet_address"],
                            paid_cost, f"Inference ({FLY_REGION})")
    paid = release_escrow(payee["api_key"], paid_id)
    log(f"paid task {paid_id}: {paid['status']}")

    # A task that fails: the payee cancels and the payer gets everything back.
    failed_cost = inference_cost("y" * 12_345)
    failed_id = create_escrow(payee["api_key"], payer["wallet_address"], payee["wallet_address"],
                              failed_cost, f"Inference ({FLY_REGION}) that fails")
    failed = cancel_escrow(payee["api_key"], failed_id)
    log(f"failed task {failed_id}: {failed['status']}")

    payer_wallet = call("GET", f"/api/wallets/{payer['wallet_address']}", 200, payer["api_key"])
    payee_wallet = call("GET", f"/api/wallets/{payee['wallet_address']}", 200, payee["api_key"])
    referrals = call("GET", "/api/referrals", 200, payer["api_key"])

    inference = None
    if ORCHESTRATOR_URL:
        bought = paid_request(f"{ORCHESTRATOR_URL}/inference",
                              {"payer_wallet": payer["wallet_address"], "prompt": "hello from python"},
                              payer["api_key"])
        after = call("GET", f"/api/wallets/{payer['wallet_address']}", 200, payer["api_key"])
        inference = {**bought, "payer_balance_after_usdc": after["balance_usdc"]}
        log(f"inference paid {bought['paid']['cost_usdc']} USDC with a payment token")

    print(json.dumps({
        "client": "python",
        "region": FLY_REGION,
        "payer": {
            "agent_id": payer["agent_id"],
            "wallet_address": payer["wallet_address"],
            "referral_code": payer["referral_code"],
            "balance_usdc": payer_wallet["balance_usdc"],
            "locked_usdc": payer_wallet["locked_usdc"],
        },
        "payee": {
            "agent_id": payee["agent_id"],
            "wallet_address": payee["wallet_address"],
            "balance_usdc": payee_wallet["balance_usdc"],
            "locked_usdc": payee_wallet["locked_usdc"],
        },
        "faucet": faucet,
        "mandate_id": mandate["mandate_id"],
        "paid": {"sent_amount": paid_cost, **{k: paid.get(k) for k in (
            "escrow_id", "status", "amount_usdc", "fee_usdc", "net_usdc")}},
        "failed": {"sent_amount": failed_cost, **{k: failed.get(k) for k in (
            "escrow_id", "status", "amount_usdc")}},
        "referrals": referrals,
        "inference": inference,
    }), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (UnexpectedStatus, httpx.HTTPError, KeyError, ValueError) as e:
        log(f"error: {type(e).__name__}: {e}")
        sys.exit(1)
    finally:
        http.close()
