/**
 * `create_payment_token` over MCP (StreamableHTTP, the official SDK client): the same
 * rule as `POST /api/payment-tokens` — minted for the caller's own wallet only, its
 * lifetime bounded — and the token it returns pays exactly once at the REST create.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { call, connect, register, rest, startService } from "./harness.js"

describe("MCP create_payment_token", () => {
  it.scopedLive("mints a token for the caller's wallet that the payee redeems once at create; refusals name the field", () =>
    Effect.gen(function*() {
      const { base } = yield* startService
      yield* Effect.promise(async () => {
        const payer = await register(base, "payer")
        const payee = await register(base, "payee")
        const asPayer = await connect(base, payer.key)
        expect((await call(asPayer, "claim_faucet", { wallet_address: payer.wallet, agent_name: "payer" })).isError).toBe(false)

        const minted = await call(asPayer, "create_payment_token", { payee_wallet: payee.wallet, max_amount_usdc: "0.25" })
        expect(minted.isError).toBe(false)
        expect(minted.structured).toMatchObject({ payer_wallet: payer.wallet, payee_wallet: payee.wallet, max_amount_usdc: "0.250000", mandate_id: null })
        expect(Date.parse(minted.structured.expires_at) - Date.parse(minted.structured.created_at)).toBe(300_000)
        const token = minted.structured.payment_token as string
        expect(token).toMatch(/^ptk_/)

        const create = () =>
          rest(base, "POST", "/api/escrow/create", {
            key: payee.key,
            body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.25", description: "job", payment_token: token }
          })
        expect((await create()).status).toBe(201)
        const wallet = async () => (await rest(base, "GET", `/api/wallets/${payer.wallet}`, { key: payer.key })).body
        expect(await wallet()).toMatchObject({ balance_usdc: "0.750000", locked_usdc: "0.250000" })
        const reused = await create()
        expect(reused).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "redeemed" } } })
        expect(await wallet()).toMatchObject({ balance_usdc: "0.750000", locked_usdc: "0.250000" })

        const tooLong = await call(asPayer, "create_payment_token", { payee_wallet: payee.wallet, max_amount_usdc: "1", expires_in_seconds: 3601 })
        expect(tooLong).toMatchObject({ isError: true, structured: { field: "expires_in_seconds" } })
        const anonymous = await connect(base)
        const noKey = await call(anonymous, "create_payment_token", { payee_wallet: payee.wallet, max_amount_usdc: "1" })
        expect(noKey).toMatchObject({ isError: true, structured: { error: "unauthorized" } })
        await Promise.all([asPayer.close(), anonymous.close()])
      })
    }))
})
