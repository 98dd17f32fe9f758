/**
 * Settlements a task could not make (the settlement failed through all its retries)
 * are recorded, then made by the orchestrator's reconciler: the payee is paid, the
 * payer refunded, and a release the escrow outlived is reported, not retried forever.
 * On `EscrowTest`, which injects the failures.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule, TestClock } from "effect"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import { LedgerUnavailable } from "../../src/domain/errors.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import { reconcileUnsettled } from "../../src/escrow/settlement.js"
import { failing, feeOf, fetcher, shareOf, u, worldOn } from "./support.js"

const down = new LedgerUnavailable({ message: "settlement service down" })

/** No retries inside the task: one injected failure leaves the settlement to the reconciler. */
const world = (reconcileEvery?: "never") =>
  worldOn(EscrowTest.layer(), { settlementRetry: Schedule.recurs(0), ...(reconcileEvery ? { reconcileEvery } : {}) })

const available = (wallet: string) =>
  Effect.flatMap(EscrowTest, (test) => Effect.map(test.ledger.balance(wallet as never), (b) => [b.available as bigint, b.locked as bigint]))

const unsettled = Effect.flatMap(Escrow, (escrow) => escrow.unsettled)

/** Lets the reconciler's fiber finish its pass (it runs on other fibers after the clock moved). */
const settledDown = Effect.gen(function*() {
  for (let i = 0; i < 100 && (yield* unsettled).length > 0; i++) yield* Effect.yieldNow()
})

describe("reconciling unsettled escrows", () => {
  it.effect("a release that failed is made by the reconciler 30 s later: the payee is paid exactly once", () =>
    Effect.gen(function*() {
      const orchestrator = yield* Orchestrator
      const test = yield* EscrowTest
      const handle = yield* Orchestrator.spawn(fetcher)
      yield* test.failNext("release", down)
      // The work was done and its output is valid: the caller gets it.
      expect(yield* Orchestrator.delegate(handle, { topic: "rates" })).toEqual({ facts: ["rates rose", "rates fell"] })
      expect((yield* unsettled).map((e) => e.intent)).toEqual(["release"])
      expect(yield* available(handle.wallet)).toEqual([0n, 0n])
      expect(yield* available(orchestrator.identity.wallet)).toEqual([u("97.5"), u("2.5")])

      yield* TestClock.adjust("29 seconds")
      expect((yield* unsettled).length).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* settledDown
      expect(yield* unsettled).toEqual([])
      expect(yield* available(handle.wallet)).toEqual([u("2.5") - feeOf(u("2.5")), 0n])
      expect(yield* available(orchestrator.identity.wallet)).toEqual([u("97.5") + shareOf(u("2.5")), 0n])
      // Later passes find nothing to do: no second release.
      yield* TestClock.adjust("5 minutes")
      expect((yield* test.calls).filter((c) => c.op === "release").map((c) => c.outcome._tag)).toEqual(["Failure", "Success"])
      expect((yield* test.ledger.verify).violations).toEqual([])
    }).pipe(Effect.provide(world())))

  it.effect("a cancel that failed is made by the reconciler: the payer is refunded in full", () =>
    Effect.gen(function*() {
      const orchestrator = yield* Orchestrator
      const test = yield* EscrowTest
      const handle = yield* Orchestrator.spawn(failing)
      yield* test.failNext("cancel", down)
      expect((yield* Effect.flip(Orchestrator.delegate(handle, { topic: "rates" })))._tag).toBe("WriterBusy")
      expect(yield* available(orchestrator.identity.wallet)).toEqual([u("97"), u("3")])
      yield* TestClock.adjust("30 seconds")
      yield* settledDown
      expect(yield* unsettled).toEqual([])
      expect(yield* available(orchestrator.identity.wallet)).toEqual([u("100"), 0n])
      expect(yield* available(handle.wallet)).toEqual([0n, 0n])
    }).pipe(Effect.provide(world())))

  it.effect("a release whose escrow was refunded meanwhile is reported as lost and not retried; one still failing waits", () =>
    Effect.gen(function*() {
      const orchestrator = yield* Orchestrator
      const test = yield* EscrowTest
      const handle = yield* Orchestrator.spawn(fetcher)
      yield* test.failNext("release", down)
      yield* Orchestrator.delegate(handle, { topic: "rates" })
      const [entry] = yield* unsettled
      const escrow = yield* Escrow

      // The settlement service is still down: the entry stays for the next pass.
      yield* test.failNext("release", down)
      expect(yield* reconcileUnsettled(escrow)).toEqual({ settled: 0, pending: 1, lost: [] })
      expect((yield* unsettled).length).toBe(1)

      // Its deadline refunded the payer before the release could be made (here: a cancel).
      yield* test.ledger.cancelEscrow(entry!.escrowId)
      expect(yield* reconcileUnsettled(escrow)).toEqual({ settled: 0, pending: 0, lost: [entry!.escrowId] })
      expect(yield* unsettled).toEqual([])
      expect(yield* available(handle.wallet)).toEqual([0n, 0n])
      expect(yield* available(orchestrator.identity.wallet)).toEqual([u("100"), 0n])
    }).pipe(Effect.provide(world("never"))))
})
