/**
 * Concurrency over real HTTP, on the SQLite ledger (group commit) and the memory
 * ledger: a mandate's budget is never overspent by concurrent creates, and 200
 * concurrent clients racing release against cancel get exactly one winner per
 * escrow with every total conserved.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { agent, type Harness, serve } from "./harness.js"

const u = Usdc.make
const fmt = Usdc.format

/** Fires all requests at once from separate connections, as independent clients would. */
const allAtOnce = <A>(requests: ReadonlyArray<() => Promise<A>>) => Effect.promise(() => Promise.all(requests.map((r) => r())))

const post = (h: Harness, path: string, key: string, body: unknown) => async () => {
  const response = await fetch(h.base + path, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as any }
}

const backends = [
  ["SQLite ledger", { sqlite: true }],
  ["memory ledger", { sqlite: false }]
] as const

for (const [backend, options] of backends) {
  describe(`concurrency over HTTP (${backend})`, () => {
    it.scopedLive("60 concurrent creates under one mandate never overspend its budget", () =>
      Effect.gen(function*() {
        const h = yield* serve(options)
        const payer = yield* agent(h, "payer", "100")
        const payee = yield* agent(h, "payee")
        const mandate = yield* h.http("POST", "/api/mandates", {
          key: payer.key,
          body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "10" }
        })
        expect(mandate.status).toBe(201)
        const replies = yield* allAtOnce(
          Array.from({ length: 60 }, (_, i) =>
            post(h, "/api/escrow/create", payee.key, {
              payer_wallet: payer.wallet,
              payee_wallet: payee.wallet,
              amount_usdc: "0.3",
              description: `task ${i}`
            }))
        )
        const created = replies.filter((r) => r.status === 201)
        const refused = replies.filter((r) => r.status !== 201)
        // floor(10 / 0.3) = 33 fit: 9.9 USDC; each of the other 27 is refused by the budget.
        expect(created).toHaveLength(33)
        expect(refused.map((r) => `${r.status} ${r.body.error}`)).toEqual(Array(27).fill("403 mandate_exceeded"))
        const locked = created.reduce((sum, r) => sum + u(r.body.amount_usdc), 0n)
        expect(fmt(locked)).toBe("9.900000")
        expect(created.every((r) => r.body.mandate_id === mandate.body.mandate_id)).toBe(true)
        expect((yield* h.ledger.getMandate(mandate.body.mandate_id)).remaining).toBe(u("0.1"))
        const balance = yield* h.ledger.balance(payer.wallet)
        expect({ available: fmt(balance.available), locked: fmt(balance.locked) }).toEqual({ available: "90.100000", locked: "9.900000" })
        expect(fmt(yield* h.ledger.systemBalance(SystemAccount.escrowHolding))).toBe("9.900000")
        expect((yield* h.ledger.verify).violations).toEqual([])
      }), 60_000)

    it.scopedLive("200 concurrent clients race release against cancel on 100 escrows: one winner each, totals conserved", () =>
      Effect.gen(function*() {
        const h = yield* serve(options)
        const referrer = yield* agent(h, "referrer")
        const payer = yield* agent(h, "payer", "1000", { referral_code: referrer.referralCode })
        const payee = yield* agent(h, "payee")
        const amount = "1.23"
        const ids = (yield* allAtOnce(
          Array.from({ length: 100 }, (_, i) =>
            post(h, "/api/escrow/create", payer.key, {
              payer_wallet: payer.wallet,
              payee_wallet: payee.wallet,
              amount_usdc: amount,
              description: `job ${i}`
            }))
        )).map((r) => {
          expect(r.status).toBe(201)
          return r.body.escrow_id as string
        })
        expect(fmt((yield* h.ledger.balance(payer.wallet)).locked)).toBe("123.000000")

        // Every escrow gets one release (payer) and one cancel (payee), all 200 in flight together, interleaved.
        const racers = ids.flatMap((id, i) => {
          const release = post(h, "/api/escrow/release", payer.key, { escrow_id: id })
          const cancel = post(h, "/api/escrow/cancel", payee.key, { escrow_id: id })
          return i % 2 === 0 ? [release, cancel] : [cancel, release]
        })
        const replies = yield* allAtOnce(racers)
        const byEscrow = new Map<string, Array<{ status: number; body: any }>>()
        for (const r of replies) {
          const id = (r.body.escrow_id ?? r.body.details?.escrow_id) as string
          byEscrow.set(id, [...(byEscrow.get(id) ?? []), r])
        }
        let releasedCount = 0
        for (const id of ids) {
          const outcomes = byEscrow.get(id)!
          expect(outcomes).toHaveLength(2)
          const winners = outcomes.filter((o) => o.status === 200)
          const losers = outcomes.filter((o) => o.status !== 200)
          expect(winners).toHaveLength(1)
          expect(losers.map((l) => `${l.status} ${l.body.error}`)).toEqual(["409 escrow_not_pending"])
          // The loser names the state the winner left.
          expect(losers[0]!.body.details.status).toBe(winners[0]!.body.status)
          const final = yield* h.ledger.getEscrow(id as never)
          expect(final.status).toBe(winners[0]!.body.status)
          if (final.status === "released") releasedCount++
        }
        const cancelledCount = 100 - releasedCount

        // 1.23 released: fee 0.0123, 15% of it (0.001845) to the payer's referrer, the rest to the platform.
        const n = BigInt(releasedCount)
        expect({
          payer: fmt((yield* h.ledger.balance(payer.wallet)).available),
          payerLocked: fmt((yield* h.ledger.balance(payer.wallet)).locked),
          payee: fmt((yield* h.ledger.balance(payee.wallet)).available),
          referrer: fmt((yield* h.ledger.balance(referrer.wallet)).available),
          platform: fmt(yield* h.ledger.systemBalance(SystemAccount.platformFees)),
          holding: fmt(yield* h.ledger.systemBalance(SystemAccount.escrowHolding))
        }).toEqual({
          payer: fmt(u("1000") - n * u("1.23")),
          payerLocked: "0.000000",
          payee: fmt(n * u("1.2177")),
          referrer: fmt(n * u("0.001845")),
          platform: fmt(n * u("0.010455")),
          holding: "0.000000"
        })
        expect(releasedCount + cancelledCount).toBe(100)
        const report = yield* h.ledger.verify
        expect(report.violations).toEqual([])
      }), 60_000)
  })
}
