// A ringmaster agent in Go, speaking the hosted escrow REST dialect.
//
// It uses the same calls as the hosted dialect's Go sample (one shared http.Client
// with keep-alive connections, pfPost with a Bearer key and a JSON body,
// amount_usdc as a float64), so an agent written for the hosted service runs
// against a ringmaster settlement service by changing only ESCROW_BASE.
//
// The run: register a payer and a payee (the payee referred by the payer), claim
// the faucet for the payer, let the payer grant the payee a mandate, then the
// payee bills the payer for one task that succeeds (create, then release) and one
// that fails (create, then cancel: the payer is refunded). It ends by printing one
// JSON line with both balances and the payer's referral earnings.
//
// With ORCHESTRATOR_URL set (a ringmaster orchestrator service), the payer also
// buys one inference the way every paid route is bought: the request is answered
// 402 Payment Required with a `WWW-Authenticate: Payment ...` challenge naming the
// price and the payee; the payer mints a single-use payment token for exactly that
// on the settlement service (with its own API key) and retries with
// `Authorization: Payment <token>`. Naming a wallet never pays: the token does.
//
// Run:  cd examples/go && ESCROW_BASE=http://127.0.0.1:8080 go run .
// Standard library only: it builds offline (GOPROXY=off). Exits 1 on any
// unexpected HTTP status, printing the status and the server's error body.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var (
	escrowBase = strings.TrimRight(envOr("ESCROW_BASE", "http://127.0.0.1:8080"), "/")
	flyRegion  = envOr("FLY_REGION", "local")
	// A ringmaster orchestrator to buy one inference from; empty: skipped.
	orchestratorURL = strings.TrimRight(os.Getenv("ORCHESTRATOR_URL"), "/")

	// Shared client — reused for every call (keep-alive pool).
	pfClient = &http.Client{
		Timeout: 12 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   4 * time.Second,
			ResponseHeaderTimeout: 8 * time.Second,
		},
	}
)

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// EscrowReq is the hosted dialect's create body, field for field as in its Go
// sample (metadata as a string map with "region").
type EscrowReq struct {
	PayerWallet string            `json:"payer_wallet"`
	PayeeWallet string            `json:"payee_wallet"`
	AmountUSDC  float64           `json:"amount_usdc"`
	Description string            `json:"description"`
	Metadata    map[string]string `json:"metadata"`
}

// RegionEscrowReq is the same body with the Python sample's metadata: the
// region under "fly_region" (stored and reported per region) and a float "ts".
type RegionEscrowReq struct {
	PayerWallet string         `json:"payer_wallet"`
	PayeeWallet string         `json:"payee_wallet"`
	AmountUSDC  float64        `json:"amount_usdc"`
	Description string         `json:"description"`
	Metadata    map[string]any `json:"metadata"`
}

type unexpectedStatus struct {
	method, path string
	want, got    int
	body         string
}

func (e *unexpectedStatus) Error() string {
	return fmt.Sprintf("%s %s: expected HTTP %d, got %d: %s", e.method, e.path, e.want, e.got, e.body)
}

// pfDo sends one JSON request with the caller's Bearer key and decodes the JSON
// reply; any status but `want` is an error carrying the server's error body.
func pfDo(ctx context.Context, method, path, apiKey string, body any, want int) (map[string]any, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, escrowBase+path, reader)
	if err != nil {
		return nil, err
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := pfClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, &unexpectedStatus{method, path, want, resp.StatusCode, string(raw)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers as sent; amounts arrive as 6-place strings anyway
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s %s: reply is not a JSON object: %w", method, path, err)
	}
	return out, nil
}

// pfPost is the hosted sample's helper: POST a JSON body with a Bearer key.
func pfPost(ctx context.Context, apiKey, path string, body any, want int) (map[string]any, error) {
	return pfDo(ctx, "POST", path, apiKey, body, want)
}

func pfGet(ctx context.Context, apiKey, path string) (map[string]any, error) {
	return pfDo(ctx, "GET", path, apiKey, nil, http.StatusOK)
}

// postJSON posts body to an absolute URL with optional extra headers; returns status, headers and the JSON reply.
func postJSON(ctx context.Context, url string, body any, headers map[string]string) (int, http.Header, map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := pfClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("POST %s: reply is not a JSON object: %w", url, err)
	}
	return resp.StatusCode, resp.Header, out, nil
}

// paidRequest buys a paid route with a payment token: request, 402 challenge,
// mint a token for the challenge's payee and price, retry with the credential.
func paidRequest(ctx context.Context, url string, body any, payerKey string) (map[string]any, error) {
	status, header, challenge, err := postJSON(ctx, url, body, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusPaymentRequired {
		return nil, &unexpectedStatus{"POST", url, http.StatusPaymentRequired, status, fmt.Sprint(challenge)}
	}
	fmt.Fprintf(os.Stderr, "[go-agent] 402: %s\n", header.Get("WWW-Authenticate"))
	// The token: for this payee, at most this price, short-lived, single use.
	minted, err := pfPost(ctx, payerKey, "/api/payment-tokens", map[string]any{
		"payee_wallet":       challenge["payee_wallet"],
		"max_amount_usdc":    challenge["price_usdc"],
		"expires_in_seconds": 60,
	}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	token, _ := minted["payment_token"].(string)
	status, _, paid, err := postJSON(ctx, url, body, map[string]string{"Authorization": "Payment " + token})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &unexpectedStatus{"POST", url, http.StatusOK, status, fmt.Sprint(paid)}
	}
	challenge["status"] = http.StatusPaymentRequired
	challenge["www_authenticate"] = header.Get("WWW-Authenticate")
	return map[string]any{"challenge": challenge, "paid": paid}, nil
}

// inferenceCost is the samples' per-request price. 42,000 characters cost
// 0.42000000000000004 as a float64: the server must read that as exactly 0.42 USDC.
func inferenceCost(prompt string) float64 {
	cost := float64(len(prompt)) * 0.00001
	if cost < 0.001 {
		cost = 0.001
	}
	return cost
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func run(ctx context.Context) (map[string]any, error) {
	// Pre-warm the connection; a failure here is not fatal (the next call reports it).
	if req, err := http.NewRequestWithContext(ctx, "GET", escrowBase+"/health", nil); err == nil {
		if resp, err := pfClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	tag := fmt.Sprintf("%d-%d", time.Now().UnixMilli(), os.Getpid())
	payer, err := pfPost(ctx, "", "/api/agents", map[string]any{"agent_name": "go-orchestrator-" + tag}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	payee, err := pfPost(ctx, "", "/api/agents", map[string]any{
		"agent_name":    "go-worker-" + tag,
		"referral_code": str(payer, "referral_code"),
	}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	payerKey, payeeKey := str(payer, "api_key"), str(payee, "api_key")
	payerWallet, payeeWallet := str(payer, "wallet_address"), str(payee, "wallet_address")
	fmt.Fprintf(os.Stderr, "[go-agent] registered payer %s and payee %s\n", payerWallet, payeeWallet)

	faucet, err := pfPost(ctx, payerKey, "/api/faucet/claim", map[string]any{
		"wallet_address": payerWallet,
		"agent_name":     "go-orchestrator-" + tag,
	}, http.StatusOK)
	if err != nil {
		return nil, err
	}

	mandate, err := pfPost(ctx, payerKey, "/api/mandates", map[string]any{
		"payee_wallet":    payeeWallet,
		"max_amount_usdc": "0.50",
		"budget_usdc":     "0.80",
	}, http.StatusCreated)
	if err != nil {
		return nil, err
	}

	// A task that succeeds: the payee opens the escrow under the mandate, does the
	// work, and releases it (payee pays the 1% fee; the payer, as the payee's
	// referrer, earns 15% of that fee).
	paidCost := inferenceCost(strings.Repeat("x", 42_000))
	created, err := pfPost(ctx, payeeKey, "/api/escrow/create", RegionEscrowReq{
		PayerWallet: payerWallet,
		PayeeWallet: payeeWallet,
		AmountUSDC:  paidCost,
		Description: "Go agent inference (" + flyRegion + ")",
		Metadata:    map[string]any{"fly_region": flyRegion, "ts": float64(time.Now().UnixNano()) / 1e9},
	}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	paid, err := pfPost(ctx, payeeKey, "/api/escrow/release", map[string]any{
		"escrow_id": str(created, "escrow_id"), "auto_release": true}, http.StatusOK)
	if err != nil {
		return nil, err
	}

	// A task that fails, created with the sample's EscrowReq verbatim: the payee
	// cancels and the payer gets everything back.
	failedCost := inferenceCost(strings.Repeat("y", 12_345))
	created, err = pfPost(ctx, payeeKey, "/api/escrow/create", EscrowReq{
		PayerWallet: payerWallet,
		PayeeWallet: payeeWallet,
		AmountUSDC:  failedCost,
		Description: "Go agent inference",
		Metadata:    map[string]string{"region": flyRegion},
	}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	failed, err := pfPost(ctx, payeeKey, "/api/escrow/cancel", map[string]string{
		"escrow_id": str(created, "escrow_id")}, http.StatusOK)
	if err != nil {
		return nil, err
	}

	payerBalance, err := pfGet(ctx, payerKey, "/api/wallets/"+payerWallet)
	if err != nil {
		return nil, err
	}
	payeeBalance, err := pfGet(ctx, payeeKey, "/api/wallets/"+payeeWallet)
	if err != nil {
		return nil, err
	}
	referrals, err := pfGet(ctx, payerKey, "/api/referrals")
	if err != nil {
		return nil, err
	}

	var inference map[string]any
	if orchestratorURL != "" {
		bought, err := paidRequest(ctx, orchestratorURL+"/inference",
			map[string]any{"payer_wallet": payerWallet, "prompt": "hello from go"}, payerKey)
		if err != nil {
			return nil, err
		}
		after, err := pfGet(ctx, payerKey, "/api/wallets/"+payerWallet)
		if err != nil {
			return nil, err
		}
		bought["payer_balance_after_usdc"] = after["balance_usdc"]
		inference = bought
	}

	paidSummary := pick(paid, "escrow_id", "status", "amount_usdc", "fee_usdc", "net_usdc")
	paidSummary["sent_amount"] = paidCost
	failedSummary := pick(failed, "escrow_id", "status", "amount_usdc")
	failedSummary["sent_amount"] = failedCost
	return map[string]any{
		"client": "go",
		"region": flyRegion,
		"payer": map[string]any{
			"agent_id":       payer["agent_id"],
			"wallet_address": payerWallet,
			"referral_code":  payer["referral_code"],
			"balance_usdc":   payerBalance["balance_usdc"],
			"locked_usdc":    payerBalance["locked_usdc"],
		},
		"payee": map[string]any{
			"agent_id":       payee["agent_id"],
			"wallet_address": payeeWallet,
			"balance_usdc":   payeeBalance["balance_usdc"],
			"locked_usdc":    payeeBalance["locked_usdc"],
		},
		"faucet":     faucet,
		"mandate_id": mandate["mandate_id"],
		"paid":       paidSummary,
		"failed":     failedSummary,
		"referrals":  referrals,
		"inference":  inference,
	}, nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	summary, err := run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[go-agent] error: %v\n", err)
		os.Exit(1)
	}
	line, err := json.Marshal(summary)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[go-agent] error: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
