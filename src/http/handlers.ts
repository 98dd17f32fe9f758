/**
 * The REST handlers: decode (done by the contract), call `Settlement`, encode.
 * No rule about money or access lives here; errors are mapped to the wire by
 * `toWire` in one place.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer } from "effect"
import { Ledger } from "../ledger/Ledger.js"
import { Authorization, CurrentCaller, RegistrationLimit, SettlementApi } from "./Api.js"
import { authenticateBearer } from "./bearer.js"
import { toWire } from "./errors.js"
import { clientAddress } from "../settlement/RateLimits.js"
import { Settlement } from "../settlement/Settlement.js"
import { SettlementConfig } from "../settlement/SettlementConfig.js"
import * as View from "./views.js"

const wire = Effect.mapError(toWire)

/** Bearer → the caller, one request of its rate limit spent. */
export const AuthorizationLive = Layer.effect(
  Authorization,
  Effect.map(Settlement, (settlement) =>
    Authorization.of({ bearer: (key) => authenticateBearer(settlement, key) }))
)

/** Registration has no key to limit on: the client address is limited, before the body is read. */
export const RegistrationLimitLive = Layer.effect(
  RegistrationLimit,
  Effect.gen(function*() {
    const settlement = yield* Settlement
    const { trustProxy } = yield* SettlementConfig
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.mapError(settlement.admitRegistration(clientAddress(request, trustProxy)), toWire))
  })
)

const SystemLive = HttpApiBuilder.group(SettlementApi, "system", (handlers) =>
  Effect.map(Ledger, (ledger) => {
    const health = { ok: true as const, region: ledger.config.region }
    return handlers.handle("health", () => Effect.succeed(health))
  }))

const AgentsLive = HttpApiBuilder.group(SettlementApi, "agents", (handlers) =>
  Effect.gen(function*() {
    const settlement = yield* Settlement
    return handlers
      .handle("register", ({ payload }) =>
        settlement.registerAgent({ name: payload.agent_name, wallet: payload.wallet_address, referralCode: payload.referral_code }).pipe(
          Effect.map(({ agent, apiKey }) => ({
            agent_id: agent.agentId,
            wallet_address: agent.wallet,
            api_key: apiKey,
            referral_code: agent.referralCode
          })),
          wire
        ))
      .handle("rotateKey", ({ payload }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.rotateKey(caller, { graceSeconds: payload?.grace_seconds }).pipe(
            Effect.map(({ apiKey, previousExpiresAtMs }) => ({
              agent_id: caller.agentId,
              api_key: apiKey,
              previous_key_expires_at: previousExpiresAtMs
            })),
            wire
          )))
      .handle("revokeKeys", () =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.revokeKeys(caller).pipe(
            Effect.map(({ revokedAtMs, revokedCount }) => ({
              agent_id: caller.agentId,
              revoked_count: revokedCount,
              revoked_at: revokedAtMs
            })),
            wire
          )))
      .handle("me", () =>
        Effect.flatMap(CurrentCaller, (caller) => settlement.me(caller).pipe(Effect.map(View.agentCardView), wire)))
      .handle("agent", ({ path }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.agentCard(caller, path.address).pipe(Effect.map(View.agentCardView), wire)))
      .handle("referrals", () =>
        Effect.flatMap(CurrentCaller, (caller) => settlement.referralStats(caller).pipe(Effect.map(View.referralsView), wire)))
  }))

const WalletsLive = HttpApiBuilder.group(SettlementApi, "wallets", (handlers) =>
  Effect.gen(function*() {
    const settlement = yield* Settlement
    const { trustProxy } = yield* SettlementConfig
    return handlers
      .handle("claimFaucet", ({ payload }) =>
        Effect.flatMap(Effect.zip(CurrentCaller, HttpServerRequest.HttpServerRequest), ([caller, request]) =>
          settlement.claimFaucet(caller, {
            wallet: payload.wallet_address,
            agentName: payload.agent_name,
            clientAddress: clientAddress(request, trustProxy)
          }).pipe(
            Effect.map(View.faucetView),
            wire
          )))
      .handle("balance", ({ path }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.balance(caller, path.address).pipe(Effect.map(View.walletView), wire)))
      .handle("activity", ({ path }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.activity(caller, path.address).pipe(Effect.map(View.activityView), wire)))
  }))

const MandatesLive = HttpApiBuilder.group(SettlementApi, "mandates", (handlers) =>
  Effect.map(Settlement, (settlement) =>
    handlers
      .handle("create", ({ payload }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.createMandate(caller, {
            payee: payload.payee_wallet,
            maxAmount: payload.max_amount_usdc,
            budget: payload.budget_usdc,
            expiresAtMs: payload.expires_at,
            maxTimeoutMs: payload.max_timeout_ms
          }).pipe(Effect.map(View.mandateView), wire)))
      .handle("revoke", ({ path }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.revokeMandate(caller, path.id).pipe(Effect.map(View.mandateView), wire)))))

const PaymentTokensLive = HttpApiBuilder.group(SettlementApi, "paymentTokens", (handlers) =>
  Effect.map(Settlement, (settlement) =>
    handlers.handle("create", ({ payload }) =>
      Effect.flatMap(CurrentCaller, (caller) =>
        settlement.mintPaymentToken(caller, {
          payee: payload.payee_wallet,
          maxAmount: payload.max_amount_usdc,
          expiresInSeconds: payload.expires_in_seconds,
          mandateId: payload.mandate_id
        }).pipe(Effect.map(View.paymentTokenView), wire)))))

const EscrowLive = HttpApiBuilder.group(SettlementApi, "escrow", (handlers) =>
  Effect.gen(function*() {
    const settlement = yield* Settlement
    const fees = (yield* Ledger).config.fees
    const view = (record: Parameters<typeof View.escrowView>[0]) => View.escrowView(record, fees)
    return handlers
      .handle("create", ({ headers, payload }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.createEscrow(
            caller,
            {
              payer: payload.payer_wallet,
              payee: payload.payee_wallet,
              amount: payload.amount_usdc,
              description: payload.description,
              metadata: payload.metadata,
              timeoutMs: payload.timeout_ms,
              mandateId: payload.mandate_id,
              paymentToken: payload.payment_token
            },
            headers["idempotency-key"]
          ).pipe(Effect.map(view), wire)))
      .handle("release", ({ payload }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.release(caller, payload.escrow_id, payload.amount_usdc).pipe(Effect.map(view), wire)))
      .handle("cancel", ({ payload }) =>
        Effect.flatMap(CurrentCaller, (caller) => settlement.cancel(caller, payload.escrow_id).pipe(Effect.map(view), wire)))
      .handle("get", ({ path }) =>
        Effect.flatMap(CurrentCaller, (caller) => settlement.get(caller, path.id).pipe(Effect.map(view), wire)))
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(CurrentCaller, (caller) =>
          settlement.list(caller, urlParams).pipe(
            Effect.map((page) => ({ escrows: page.escrows.map(view), next_cursor: page.nextCursor })),
            wire
          )))
  }))

/** Every group's handlers and the contract's middleware. Needs `Settlement`, `Ledger`, `SettlementConfig`. */
export const HandlersLive = Layer.mergeAll(SystemLive, AgentsLive, WalletsLive, MandatesLive, PaymentTokensLive, EscrowLive).pipe(
  Layer.provide(Layer.mergeAll(AuthorizationLive, RegistrationLimitLive))
)
