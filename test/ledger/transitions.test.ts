/**
 * `EscrowTransitions`: each ledger tells every committed escrow transition once, and
 * nothing for a repeat (a release of a released escrow, a cancel of a cancelled one,
 * an idempotent replay of a create) or a refusal. The same on every implementation.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref, TestClock } from "effect"
import type { EscrowEvent } from "../../src/domain/Escrow.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { EscrowTransitions } from "../../src/ledger/Transitions.js"
import { ledgerImplementations } from "./implementations.js"

for (const [name, makeLedger] of ledgerImplementations) {
  describe(`EscrowTransitions on ${name}`, () => {
    it.scoped("tells each transition once, with the escrow's region; repeats and refusals tell nothing", () =>
      Effect.gen(function*() {
        const told = yield* Ref.make<ReadonlyArray<EscrowEvent>>([])
        const listener = Layer.succeed(EscrowTransitions, { committed: (events) => Ref.update(told, (all) => [...all, ...events]) })
        const ledger = yield* Effect.provide(Ledger, yield* Layer.build(makeLedger({ region: "gru" }).pipe(Layer.provide(listener))))
        const take = Effect.map(Ref.getAndSet(told, []), (events) => events.map((e) => `${e.kind}:${e.region}`))

        const payer = yield* ledger.registerAgent({ name: "payer" })
        const payee = yield* ledger.registerAgent({ name: "payee" })
        yield* ledger.deposit(payer.wallet, Usdc.make("10"))
        expect(yield* take).toEqual([])

        const terms = { payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1"), description: "t", idempotencyKey: "k1" }
        const a = yield* ledger.createEscrow(terms)
        const replay = yield* ledger.createEscrow(terms)
        expect(replay.id).toBe(a.id)
        expect(yield* take).toEqual(["created:gru"])

        yield* ledger.releaseEscrow(a.id, { amount: Usdc.make("0.4") })
        expect(yield* take).toEqual(["partially_released:gru"])
        yield* ledger.releaseEscrow(a.id)
        yield* ledger.releaseEscrow(a.id)
        expect(yield* take).toEqual(["released:gru"])
        expect((yield* Effect.flip(ledger.cancelEscrow(a.id)))._tag).toBe("EscrowNotPending")
        expect(yield* take).toEqual([])

        const b = yield* ledger.createEscrow({ ...terms, idempotencyKey: undefined, metadata: { fly_region: "scl" } })
        yield* ledger.cancelEscrow(b.id)
        yield* ledger.cancelEscrow(b.id)
        expect(yield* take).toEqual(["created:scl", "cancelled:scl"])

        const refused = yield* Effect.flip(ledger.createEscrow({ ...terms, idempotencyKey: undefined, amount: Usdc.make("100") }))
        expect(refused._tag).toBe("InsufficientFunds")
        expect(yield* take).toEqual([])

        const c = yield* ledger.createEscrow({ ...terms, idempotencyKey: undefined, timeout: "1 minute" })
        expect(yield* take).toEqual(["created:gru"])
        expect(yield* ledger.expireDue()).toEqual([])
        yield* TestClock.adjust("2 minutes")
        const expired = yield* ledger.expireDue()
        expect(expired.map((e) => e.id)).toEqual([c.id])
        expect(yield* ledger.expireDue()).toEqual([])
        expect(yield* take).toEqual(["expired:gru"])
      }))
  })
}
