import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Ref, Schema, Scope, Stream, TestClock } from "effect"
import { Accounts } from "../../src/agents/Accounts.js"
import * as Agent from "../../src/agents/Agent.js"
import { AgentCrashed, AgentStopped, ChargeExceedsMaximum, InvalidOutput, TaskTimedOut } from "../../src/agents/errors.js"
import { Orchestrator, RestartPolicy } from "../../src/agents/Orchestrator.js"
import { BudgetExceeded, InvalidInput } from "../../src/domain/errors.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { recordingTracer } from "../support/tracing.js"
import { backends, failing, Facts, feeOf, fetcher, shareOf, Text, Topic, u, world, WriterBusy } from "./support.js"

const balances = (...wallets: ReadonlyArray<string>) =>
  Effect.flatMap(Ledger, (ledger) =>
    Effect.forEach(wallets, (w) => Effect.map(ledger.balance(w as never), (b) => [b.available as bigint, b.locked as bigint])))

const escrowCount = Effect.flatMap(Ledger, (ledger) => Effect.map(ledger.listEscrows({ limit: 500 }), (p) => p.escrows.length))

const collectFirst = <A, E, R>(stream: Stream.Stream<A, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), (chunk) => [...chunk])

/** A tagged error's fields as a plain object (readable diffs). */
const fields = (error: unknown) => ({ ...(error as object) })

/**
 * One turn of the event loop: lets other fibers run and I/O callbacks fire (the SQL
 * ledger's writer waits a macrotask before each batch, which `yieldNow` never reaches).
 */
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Lets other fibers run until `check` holds (at most 1,000 event-loop turns). */
const eventually = <R>(check: Effect.Effect<boolean, never, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      if (yield* check) return
      yield* turn
    }
    return yield* Effect.dieMessage("condition not reached within 1,000 event-loop turns")
  })

const verified = Effect.flatMap(Ledger, (ledger) => Effect.map(ledger.verify, (r) => expect(r.violations).toEqual([])))

for (const backend of backends) {
  describe(`Orchestrator on ${backend.name}`, () => {
    it.effect("spawn registers the sub-agent as referred by the orchestrator", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const handle = yield* Orchestrator.spawn(fetcher, { faucet: true })
        expect(handle.identity.referrer).toBe(orchestrator.identity.wallet)
        expect(handle.identity.agentId).toMatch(/^agt_/)
        expect(handle.identity.referralCode).not.toBe(orchestrator.identity.referralCode)
        expect(handle.orchestrator?.identity.wallet).toBe(handle.wallet)
        const [[available]] = yield* balances(handle.wallet)
        expect(available).toBe(u("1"))
      }).pipe(Effect.provide(world(backend))))

    it.effect("success releases and pays exactly price − fee", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const handle = yield* Orchestrator.spawn(fetcher)
        const out = yield* Orchestrator.delegate(handle, { topic: "rates" })
        expect(out.facts).toEqual(["rates rose", "rates fell"])
        const price = u("2.5")
        const [[payer, payerLocked], [payee]] = yield* balances(orchestrator.identity.wallet, handle.wallet)
        expect(payee).toBe(price - feeOf(price)) // 2.475000
        // The orchestrator paid the price and earned 15% of the fee as the payee's referrer.
        expect(payer).toBe(u("100") - price + shareOf(price))
        expect(payerLocked).toBe(0n)
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ status: "released", released: price, fee: feeOf(price), payeeName: "fetcher" })
        expect(payment!.outcome).toEqual({ _tag: "Paid", paid: price })
        expect(yield* handle.status).toMatchObject({ completed: 1, failed: 0, inFlight: 0, state: "running" })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("an agent failure cancels with a full refund", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const handle = yield* Orchestrator.spawn(failing)
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
        expect(error).toBeInstanceOf(WriterBusy)
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual([[u("100"), 0n], [0n, 0n]])
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ status: "cancelled", refunded: u("3"), released: 0n })
        expect(payment!.outcome).toEqual({ _tag: "Refunded", refunded: u("3") })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("a task can spend the caller's wallet instead of the orchestrator's, within the orchestrator's caps", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const ledger = yield* Ledger
        const caller = yield* ledger.registerAgent({ name: "caller" })
        yield* ledger.deposit(caller.wallet, Usdc.make("10"))
        const handle = yield* Orchestrator.spawn(fetcher)
        yield* Orchestrator.delegate(handle, { topic: "x" }, { payer: caller.wallet })
        const price = u("2.5")
        expect(yield* balances(caller.wallet, orchestrator.identity.wallet, handle.wallet)).toEqual([
          [u("10") - price, 0n],
          // The orchestrator paid nothing and still earned its referral share on the fee.
          [u("100") + shareOf(price), 0n],
          [price - feeOf(price), 0n]
        ])
        const capped = yield* Effect.flip(
          orchestrator.withBudget({ perRun: Usdc.make("1") })(Orchestrator.delegate(handle, { topic: "x" }, { payer: caller.wallet }))
        )
        expect(capped).toBeInstanceOf(BudgetExceeded)
      }).pipe(Effect.provide(world(backend))))

    it.effect("a timeout (TestClock) cancels with a full refund", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const started = yield* Deferred.make<void>()
        const slow = Agent.make({
          name: "slow",
          input: Topic,
          output: Facts,
          price: Usdc.make("4"),
          run: () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.sleep("10 seconds")), Effect.as({ facts: [] }))
        })
        const handle = yield* Orchestrator.spawn(slow)
        const fiber = yield* Effect.fork(Orchestrator.delegate(handle, { topic: "x" }, { timeoutMs: 1_000 }))
        yield* Deferred.await(started)
        yield* TestClock.adjust("999 millis")
        expect(yield* balances(orchestrator.identity.wallet)).toEqual([[u("96"), u("4")]])
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.await(fiber)
        expect(exit).toEqual(Exit.fail(new TaskTimedOut({ agent: "slow", timeoutMs: 1_000 })))
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual([[u("100"), 0n], [0n, 0n]])
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.live("a timeout on the live clock (a real timer) cancels with a full refund", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const slow = Agent.make({
          name: "slow-live",
          input: Topic,
          output: Facts,
          price: Usdc.make("4"),
          run: () => Effect.never
        })
        const handle = yield* Orchestrator.spawn(slow)
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }, { timeoutMs: 30 }))
        expect(error).toEqual(new TaskTimedOut({ agent: "slow-live", timeoutMs: 30 }))
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual([[u("100"), 0n], [0n, 0n]])
        // A task that finishes in time is paid, and its deadline does not fire later.
        const quick = yield* Orchestrator.spawn(fetcher)
        yield* Orchestrator.delegate(quick, { topic: "rates" }, { timeoutMs: 30 })
        yield* Effect.sleep("60 millis")
        expect(yield* quick.status).toMatchObject({ completed: 1, failed: 0, inFlight: 0 })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("with a tracer installed, each paid task is a span and so is its settlement", () =>
      Effect.gen(function*() {
        const { names, tracer } = recordingTracer()
        const handle = yield* Orchestrator.spawn(fetcher)
        yield* Orchestrator.delegate(handle, { topic: "rates" }).pipe(Effect.withTracer(tracer))
        expect(names).toContain("ringmaster.delegate")
        expect(names).toContain("ringmaster.escrow.settle")
      }).pipe(Effect.provide(world(backend))))

    it.effect("interrupting the caller cancels with a full refund", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const started = yield* Deferred.make<void>()
        const stuck = Agent.make({
          name: "stuck",
          input: Topic,
          output: Facts,
          price: Usdc.make("5"),
          run: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
        })
        const handle = yield* Orchestrator.spawn(stuck)
        const fiber = yield* Effect.fork(Orchestrator.delegate(handle, { topic: "x" }))
        yield* Deferred.await(started)
        expect(yield* balances(orchestrator.identity.wallet)).toEqual([[u("95"), u("5")]])
        yield* Fiber.interrupt(fiber)
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual([[u("100"), 0n], [0n, 0n]])
        expect((yield* orchestrator.payments())[0]?.status).toBe("cancelled")
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("output that fails the output schema is not paid for", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const liar = Agent.make({
          name: "liar",
          input: Topic,
          output: Schema.Struct({ facts: Schema.Array(Schema.String).pipe(Schema.minItems(1)) }),
          price: Usdc.make("1"),
          run: () => Effect.succeed({ facts: [] })
        })
        const handle = yield* Orchestrator.spawn(liar)
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
        expect(error).toBeInstanceOf(InvalidOutput)
        expect((error as InvalidOutput).message).toContain("output.facts")
        expect(yield* balances(orchestrator.identity.wallet)).toEqual([[u("100"), 0n]])
      }).pipe(Effect.provide(world(backend))))

    it.effect("bad input names the field and locks nothing", () =>
      Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(fetcher)
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "" }))
        expect(error).toBeInstanceOf(InvalidInput)
        expect((error as InvalidInput).field).toBe("input.topic")
        const bad = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }, { timeoutMs: 0 }))
        expect((bad as InvalidInput).field).toBe("timeoutMs")
        expect(yield* escrowCount).toBe(0)
      }).pipe(Effect.provide(world(backend))))

    it.effect("a per-task cap stops a task before any lock", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const handle = yield* Orchestrator.spawn(fetcher)
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
        expect(error).toEqual(
          new BudgetExceeded({ cap: "per-task", limitMicros: u("2"), spentMicros: 0n, requestedMicros: u("2.5") })
        )
        const call = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }, { maxPrice: Usdc.make("1") }))
        expect(call).toBeInstanceOf(BudgetExceeded)
        expect(yield* escrowCount).toBe(0)
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual([[u("100"), 0n], [0n, 0n]])
      }).pipe(Effect.provide(world(backend, { budget: { perTask: Usdc.make("2") } }))))

    it.effect("a per-run cap counts paid and locked tasks, and a refund frees its share", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const good = yield* Orchestrator.spawn(fetcher) // 2.5 each
        const bad = yield* Orchestrator.spawn(failing) // 3, always fails
        // A run inside the orchestrator's life can have its own, tighter cap.
        const inner = yield* Effect.flip(orchestrator.withBudget({ perRun: Usdc.make("0.1") })(Orchestrator.delegate(good, { topic: "f" })))
        expect(fields(inner)).toEqual({ _tag: "BudgetExceeded", cap: "per-run", limitMicros: u("0.1"), spentMicros: 0n, requestedMicros: u("2.5") })
        expect(yield* escrowCount).toBe(0)
        yield* Orchestrator.delegate(good, { topic: "a" })
        yield* Orchestrator.delegate(good, { topic: "b" })
        // 5 spent; a failed task's 3 is refunded and returned to the cap.
        yield* Effect.flip(Orchestrator.delegate(bad, { topic: "c" }))
        expect(yield* orchestrator.spent).toEqual({ paidMicros: u("5"), lockedMicros: 0n })
        yield* Orchestrator.delegate(good, { topic: "d" })
        const error = yield* Effect.flip(Orchestrator.delegate(good, { topic: "e" }))
        expect(error).toEqual(
          new BudgetExceeded({ cap: "per-run", limitMicros: u("8"), spentMicros: u("7.5"), requestedMicros: u("2.5") })
        )
        expect(yield* escrowCount).toBe(4)
      }).pipe(Effect.provide(world(backend, { budget: { perRun: Usdc.make("8") } }))))

    it.effect("concurrent tasks cannot overshoot the per-run cap", () =>
      Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(fetcher, { concurrency: 64 })
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => Effect.either(Orchestrator.delegate(handle, { topic: `t${i}` })),
          { concurrency: "unbounded" }
        )
        expect(results.filter((r) => r._tag === "Right")).toHaveLength(4) // 4 × 2.5 = 10
        expect(yield* escrowCount).toBe(4)
        const [[available]] = yield* balances(handle.wallet)
        expect(available).toBe(4n * (u("2.5") - feeOf(u("2.5"))))
      }).pipe(Effect.provide(world(backend, { budget: { perRun: Usdc.make("10") } }))))

    it.effect("a crashed sub-agent restarts per its policy and is paid once", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const runs = yield* Ref.make(0)
        const flaky = Agent.make({
          name: "flaky",
          input: Topic,
          output: Facts,
          price: Usdc.make("1"),
          run: (_, task) =>
            Effect.flatMap(Ref.updateAndGet(runs, (n) => n + 1), (n) =>
              n <= 2 ? Effect.die(new Error(`boom ${n}`)) : Effect.succeed({ facts: [`after ${task.restarts} restarts`] }))
        })
        const handle = yield* Orchestrator.spawn(flaky, { restart: RestartPolicy.upTo(3, "1 second") })
        const fiber = yield* Effect.fork(Orchestrator.delegate(handle, { topic: "x" }))
        yield* eventually(Effect.map(Ref.get(runs), (n) => n === 1))
        yield* TestClock.adjust("1 second")
        yield* eventually(Effect.map(Ref.get(runs), (n) => n === 2))
        yield* TestClock.adjust("999 millis")
        expect(yield* Ref.get(runs)).toBe(2) // restarted once, backing off before the second restart
        yield* TestClock.adjust("1 millis")
        const out = yield* Fiber.join(fiber)
        expect(out.facts).toEqual(["after 2 restarts"])
        expect(yield* handle.status).toMatchObject({ crashes: 2, restarts: 2, completed: 1 })
        const payments = yield* orchestrator.payments()
        expect(payments.map((p) => p.status)).toEqual(["released"])
        const [[payee]] = yield* balances(handle.wallet)
        expect(payee).toBe(u("1") - feeOf(u("1")))
      }).pipe(Effect.provide(world(backend))))

    it.effect("a sub-agent that keeps crashing fails the task once its policy gives up, with a full refund", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const broken = Agent.make({
          name: "broken",
          input: Topic,
          output: Facts,
          price: Usdc.make("1"),
          run: () => Effect.die(new Error("segfault"))
        })
        const handle = yield* Orchestrator.spawn(broken, { restart: RestartPolicy.upTo(2) })
        const error = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
        expect(error).toEqual(new AgentCrashed({ agent: "broken", restarts: 2, defect: "segfault" }))
        expect(yield* handle.status).toMatchObject({ crashes: 3, restarts: 2, failed: 1 })
        expect(yield* balances(orchestrator.identity.wallet)).toEqual([[u("100"), 0n]])
      }).pipe(Effect.provide(world(backend))))

    it.scoped("restart policies: RestartPolicy.never, the orchestrator's default for its sub-agents, and RestartPolicy.default", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const segfault = Agent.make({ name: "segfault", input: Topic, output: Facts, price: Usdc.make("1"), run: () => Effect.die("segfault") })

        const never = yield* Orchestrator.spawn(segfault, { restart: RestartPolicy.never })
        expect(yield* Effect.flip(Orchestrator.delegate(never, { topic: "x" }))).toEqual(
          new AgentCrashed({ agent: "segfault", restarts: 0, defect: "segfault" })
        )
        expect(yield* never.status).toMatchObject({ crashes: 1, restarts: 0, failed: 1 })

        // An orchestrator's `restart` is its sub-agents' policy unless spawn names one.
        const strict = yield* Orchestrator.make({ name: "strict", deposit: Usdc.make("5"), restart: RestartPolicy.never })
        const underStrict = yield* strict.spawn(segfault)
        expect(yield* Effect.flip(strict.delegate(underStrict, { topic: "x" }))).toMatchObject({ _tag: "AgentCrashed", restarts: 0 })

        // The default: 3 restarts, 10, 20 and 40 ms apart.
        const byDefault = yield* Orchestrator.spawn(segfault)
        const fiber = yield* Effect.fork(Effect.flip(Orchestrator.delegate(byDefault, { topic: "x" })))
        yield* eventually(Effect.map(byDefault.status, (st) => st.crashes === 1))
        yield* TestClock.adjust("69 millis")
        yield* eventually(Effect.map(byDefault.status, (st) => st.crashes === 3))
        // The third restart is granted, and waits out its 40 ms.
        expect(yield* byDefault.status).toMatchObject({ crashes: 3, restarts: 3 })
        yield* TestClock.adjust("1 millis")
        expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "AgentCrashed", restarts: 3 })
        expect(yield* balances(orchestrator.identity.wallet, strict.identity.wallet)).toEqual([[u("100"), 0n], [u("5"), 0n]])
      }).pipe(Effect.provide(world(backend))))

    it.effect("a sub-agent's own caps (spawn's budget) stop its hiring before any lock; its task is refunded", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        // Hires a helper (0.5) for every task it takes, from its own wallet (1 USDC from the faucet).
        const helper = Agent.make({ ...fetcher, name: "helper", price: Usdc.make("0.5") })
        const leadNamed = (name: string) =>
          Agent.make({ name, input: Topic, output: Facts, price: Usdc.make("4"), run: (input) => Orchestrator.hire(helper, input) })
        const capped = yield* Orchestrator.spawn(leadNamed("lead"), { faucet: true, budget: { perTask: Usdc.make("0.4") } })
        const error = yield* Effect.flip(Orchestrator.delegate(capped, { topic: "x" }))
        expect(fields(error)).toEqual({ _tag: "BudgetExceeded", cap: "per-task", limitMicros: u("0.4"), spentMicros: 0n, requestedMicros: u("0.5") })
        // Only the lead's own escrow was opened, and it was refunded.
        expect(yield* escrowCount).toBe(1)
        expect(yield* balances(orchestrator.identity.wallet, capped.wallet)).toEqual([[u("100"), 0n], [u("1"), 0n]])
        // Uncapped, the same lead hires and is paid.
        const free = yield* Orchestrator.spawn(leadNamed("free-lead"), { faucet: true })
        expect(yield* Orchestrator.delegate(free, { topic: "x" })).toEqual({ facts: ["x rose", "x fell"] })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("retries and fallbacks: each failed attempt is refunded, the one that succeeds is paid", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const primary = yield* Orchestrator.spawn(failing)
        const backup = yield* Orchestrator.spawn(Agent.make({ ...failing, name: "backup", price: Usdc.make("3"), run: fetcher.run }))
        const out = yield* Orchestrator.delegate(primary, { topic: "x" }, { retries: 2, fallback: [backup] })
        expect(out.facts).toEqual(["x rose", "x fell"])
        const payments = yield* orchestrator.payments()
        // Escrows opened in the same millisecond have no order between them: compare as a set.
        expect(payments.map((p) => `${p.payeeName}:${p.status}`).sort()).toEqual([
          "backup:released",
          "failing:cancelled",
          "failing:cancelled",
          "failing:cancelled"
        ])
        const [[payer]] = yield* balances(orchestrator.identity.wallet)
        expect(payer).toBe(u("100") - u("3") + shareOf(u("3")))
      }).pipe(Effect.provide(world(backend))))

    it.effect("a per-sub-agent concurrency limit holds tasks back (no escrow until a slot frees)", () =>
      Effect.gen(function*() {
        const running = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const gate = yield* Deferred.make<void>()
        const gated = Agent.make({
          name: "gated",
          input: Topic,
          output: Facts,
          price: Usdc.make("1"),
          run: () =>
            Effect.gen(function*() {
              const now = yield* Ref.updateAndGet(running, (n) => n + 1)
              yield* Ref.update(peak, (p) => Math.max(p, now))
              yield* Deferred.await(gate)
              yield* Ref.update(running, (n) => n - 1)
              return { facts: [] }
            })
        })
        const handle = yield* Orchestrator.spawn(gated, { concurrency: 2 })
        const fiber = yield* Effect.fork(
          Effect.forEach([1, 2, 3, 4, 5], (i) => Orchestrator.delegate(handle, { topic: `${i}` }), { concurrency: "unbounded" })
        )
        yield* eventually(Effect.map(Ref.get(running), (n) => n === 2))
        // and it stays there: more turns let no third task start or lock
        yield* turn.pipe(Effect.repeatN(50))
        expect(yield* Ref.get(running)).toBe(2)
        expect(yield* escrowCount).toBe(2)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(fiber)
        expect(yield* Ref.get(peak)).toBe(2)
        expect(yield* escrowCount).toBe(5)
      }).pipe(Effect.provide(world(backend))))

    it.effect("closing the orchestrator's scope stops its sub-agents and refunds their running tasks", () =>
      Effect.gen(function*() {
        const ledger = yield* Ledger
        // The orchestrator alone lives in `scope`; the ledger outlives it, so we can inspect it after.
        const scope = yield* Scope.make()
        const orchestrator = Layer.succeedContext(
          yield* Layer.buildWithScope(Orchestrator.layer({ name: "orchestrator", deposit: Usdc.make("100") }), scope)
        )
        const started = yield* Deferred.make<void>()
        const stuck = Agent.make({
          name: "stuck",
          input: Topic,
          output: Facts,
          price: Usdc.make("5"),
          run: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
        })
        const { handle, fiber } = yield* Effect.gen(function*() {
          const handle = yield* Orchestrator.spawn(stuck)
          const fiber = yield* Effect.fork(Orchestrator.delegate(handle, { topic: "x" }))
          yield* Deferred.await(started)
          return { handle, fiber }
        }).pipe(Effect.provide(orchestrator))
        const [before] = (yield* ledger.listEscrows({})).escrows
        expect((yield* ledger.balance(before!.payer)).locked).toBe(u("5"))
        const [inFlight] = yield* Effect.provide(Orchestrator.payments(), orchestrator)
        expect(inFlight).toMatchObject({ status: "pending", outcome: { _tag: "Pending", paid: 0n, locked: u("5") } })
        yield* Scope.close(scope, Exit.void)
        expect(yield* Effect.flip(Fiber.join(fiber))).toEqual(new AgentStopped({ agent: "stuck" }))
        expect((yield* handle.status).state).toBe("stopped")
        const again = yield* Effect.flip(Effect.provide(Orchestrator.delegate(handle, { topic: "x" }), orchestrator))
        expect(again).toBeInstanceOf(AgentStopped)
        const spawnAfter = yield* Effect.flip(Effect.provide(Orchestrator.spawn(stuck), orchestrator))
        expect(spawnAfter).toBeInstanceOf(AgentStopped)
        const page = yield* ledger.listEscrows({})
        expect(page.escrows.map((e) => e.status)).toEqual(["cancelled"])
        expect(yield* ledger.balance(before!.payer)).toMatchObject({ available: u("100"), locked: 0n })
      }).pipe(Effect.provide(Layer.provideMerge(Accounts.layerFromLedger, backend.layer()))))

    it.effect("usage-priced: locks the maximum, pays what was used, refunds the rest", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const llm = Agent.metered({
          name: "llm",
          input: Topic,
          output: Text,
          maxPrice: Usdc.make("1"),
          run: ({ topic }, task) =>
            Effect.gen(function*() {
              yield* task.charge(Usdc.make("0.3")) // prompt tokens
              yield* task.charge(Usdc.make("0.123457")) // completion tokens
              expect(yield* task.used).toBe(u("0.423457"))
              return { text: `about ${topic}` }
            })
        })
        const handle = yield* Orchestrator.spawn(llm)
        expect(yield* Orchestrator.delegate(handle, { topic: "fees" })).toEqual({ text: "about fees" })
        const used = u("0.423457")
        const [[payer, locked], [payee]] = yield* balances(orchestrator.identity.wallet, handle.wallet)
        expect(locked).toBe(0n)
        expect(payee).toBe(used - feeOf(used)) // fee 4,234 μ
        expect(payer).toBe(u("100") - used + shareOf(used))
        const [payment] = yield* orchestrator.payments()
        // A success: partly paid, its unused remainder refunded (the escrow itself ends cancelled).
        expect(payment).toMatchObject({ locked: u("1"), released: used, refunded: u("1") - used, status: "cancelled" })
        expect(payment!.outcome).toEqual({ _tag: "PartlyPaid", paid: used, refunded: u("1") - used })
        expect(yield* orchestrator.spent).toEqual({ paidMicros: used, lockedMicros: 0n })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("usage-priced: a charge past the maximum fails ChargeExceedsMaximum; unhandled, the payer is refunded in full", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const greedy = Agent.metered({
          name: "greedy",
          input: Topic,
          output: Text,
          maxPrice: Usdc.make("0.5"),
          run: (_, task) =>
            Effect.gen(function*() {
              yield* task.charge(Usdc.make("0.2"))
              yield* task.charge(Usdc.make("7"))
              return { text: "" }
            })
        })
        const handle = yield* Orchestrator.spawn(greedy)
        const refused = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
        expect(refused).toBeInstanceOf(ChargeExceedsMaximum)
        expect(refused).toMatchObject({ agent: "greedy", chargeMicros: u("7"), chargedMicros: u("0.2"), maximumMicros: u("0.5") })
        expect(refused.message).toBe("agent greedy charged 7.000000 USDC on top of 0.200000 USDC, beyond its maximum of 0.500000 USDC")
        const [[payer, locked], [payee]] = yield* balances(orchestrator.identity.wallet, handle.wallet)
        expect([payer, locked, payee]).toEqual([u("100"), 0n, 0n])
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ locked: u("0.5"), released: 0n, refunded: u("0.5") })
        expect(payment!.outcome).toEqual({ _tag: "Refunded", refunded: u("0.5") })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("usage-priced: an agent that handles ChargeExceedsMaximum is paid what it charged within the maximum", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const careful = Agent.metered({
          name: "careful",
          input: Topic,
          output: Text,
          maxPrice: Usdc.make("0.5"),
          run: (_, task) =>
            Effect.gen(function*() {
              yield* task.charge(Usdc.make("0.4"))
              const over = yield* Effect.flip(task.charge(Usdc.make("0.100001")))
              expect(over._tag).toBe("ChargeExceedsMaximum")
              yield* task.charge(Usdc.make("0.1")) // exactly up to the maximum is allowed
              expect(yield* task.used).toBe(u("0.5"))
              return { text: "done" }
            })
        })
        const handle = yield* Orchestrator.spawn(careful)
        expect(yield* Orchestrator.delegate(handle, { topic: "x" })).toEqual({ text: "done" })
        const [[payer, locked], [payee]] = yield* balances(orchestrator.identity.wallet, handle.wallet)
        expect(locked).toBe(0n)
        expect(payee).toBe(u("0.5") - feeOf(u("0.5")))
        expect(payer).toBe(u("100") - u("0.5") + shareOf(u("0.5")))
        // Its whole maximum used: paid in full, nothing refunded.
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ status: "released", outcome: { _tag: "Paid", paid: u("0.5") } })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("streaming: each batch is paid on delivery; stopping early pays only what was received", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const ticker = Agent.streaming({
          name: "ticker",
          input: Topic,
          output: Schema.Struct({ quotes: Schema.Array(Schema.Number) }),
          maxPrice: Usdc.make("1"),
          pricePerBatch: (batch) => Usdc.unsafeMicros(BigInt(batch.quotes.length) * 33_333n),
          run: () => Stream.fromIterable([{ quotes: [1, 2] }, { quotes: [3] }, { quotes: [4, 5, 6] }, { quotes: [7] }, { quotes: [8] }])
        })
        const handle = yield* Orchestrator.spawn(ticker)
        const taken = yield* collectFirst(Orchestrator.stream(handle, { topic: "x" }), 3)
        expect(taken.map((b) => b.quotes.length)).toEqual([2, 1, 3])
        const parts = [2n, 1n, 3n].map((n) => n * 33_333n)
        const paid = parts.reduce((a, b) => a + b, 0n)
        const [[payer, locked], [payee]] = yield* balances(orchestrator.identity.wallet, handle.wallet)
        expect(locked).toBe(0n)
        // Fees are per released part (floor each time).
        expect(payee).toBe(parts.reduce((total, p) => total + p - feeOf(p), 0n))
        expect(payer).toBe(u("100") - paid + parts.reduce((total, p) => total + shareOf(p), 0n))
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ released: paid, refunded: u("1") - paid, status: "cancelled" })
        expect(payment!.outcome).toEqual({ _tag: "PartlyPaid", paid, refunded: u("1") - paid })
        // Consumed to the end: every batch paid, the unused maximum refunded.
        const all = yield* collectFirst(Orchestrator.stream(handle, { topic: "y" }), 100)
        expect(all).toHaveLength(5)
        const second = (yield* orchestrator.payments()).find((p) => p.escrowId !== payment!.escrowId)
        expect(second).toMatchObject({ released: 8n * 33_333n, refunded: u("1") - 8n * 33_333n })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    /** A streaming agent paid 0.01 per batch, up to 1 USDC: `run` gives its batches. */
    const streamer = (name: string, run: () => Stream.Stream<number>) =>
      Agent.streaming({ name, input: Topic, output: Schema.Number, maxPrice: Usdc.make("1"), pricePerBatch: Usdc.make("0.01"), run })
    const batch = u("0.01")
    /** Consumes `stream` in a fiber, counting what it received. */
    const consume = <E, R>(stream: Stream.Stream<number, E, R>) =>
      Effect.gen(function*() {
        const received = yield* Ref.make(0)
        const fiber = yield* Effect.fork(Stream.runDrain(Stream.tap(stream, () => Ref.update(received, (n) => n + 1))))
        return { fiber, received: (n: number) => eventually(Effect.map(Ref.get(received), (r) => r === n)) }
      })
    /** After `n` paid batches and the rest of the 1 USDC refunded: the payer's and payee's balances. */
    const afterBatches = (n: bigint) => [
      [u("100") - n * batch + n * shareOf(batch), 0n],
      [n * (batch - feeOf(batch)), 0n]
    ]

    it.effect("streaming: the deadline covers the whole stream, not each batch (TestClock); the remainder is refunded", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        // A batch every 400 ms, forever: never idle for long, so only a whole-stream deadline ends it.
        const ticker = streamer("steady", () => Stream.repeatEffect(Effect.as(Effect.sleep("400 millis"), 1)))
        const handle = yield* Orchestrator.spawn(ticker)
        const { fiber, received } = yield* consume(Orchestrator.stream(handle, { topic: "x" }, { timeoutMs: 1_000 }))
        yield* eventually(Effect.map(Effect.orDie(escrowCount), (n) => n === 1))
        yield* TestClock.adjust("400 millis")
        yield* received(1)
        yield* TestClock.adjust("400 millis")
        yield* received(2)
        yield* TestClock.adjust("200 millis")
        expect(yield* Fiber.await(fiber)).toEqual(Exit.fail(new TaskTimedOut({ agent: "steady", timeoutMs: 1_000 })))
        expect(yield* balances(orchestrator.identity.wallet, handle.wallet)).toEqual(afterBatches(2n))
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("streaming: interrupting the consumer, or stopping the sub-agent, pays what was received and refunds the rest", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const oneThenSilence = () => Stream.concat(Stream.make(1), Stream.never)
        const first = yield* Orchestrator.spawn(streamer("interrupted", oneThenSilence))
        const a = yield* consume(Orchestrator.stream(first, { topic: "x" }))
        yield* a.received(1)
        expect(Exit.isInterrupted(yield* Fiber.interrupt(a.fiber))).toBe(true)
        expect(yield* balances(orchestrator.identity.wallet, first.wallet)).toEqual(afterBatches(1n))

        const second = yield* Orchestrator.spawn(streamer("stopped", oneThenSilence))
        const b = yield* consume(Orchestrator.stream(second, { topic: "x" }))
        yield* b.received(1)
        yield* second.stop
        const stopped = yield* Fiber.await(b.fiber)
        expect(Exit.isFailure(stopped) || Exit.isInterrupted(stopped)).toBe(true)
        const [[payer, locked], [payee]] = yield* balances(orchestrator.identity.wallet, second.wallet)
        expect([payer, locked, payee]).toEqual([u("100") - 2n * batch + 2n * shareOf(batch), 0n, batch - feeOf(batch)])
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("streaming: a crash fails with AgentCrashed (not restarted: batches would be charged again) and refunds the rest", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const crashy = yield* Orchestrator.spawn(streamer("crashy", () => Stream.concat(Stream.make(1), Stream.die(new Error("boom")))))
        const error = yield* Effect.flip(Stream.runDrain(Orchestrator.stream(crashy, { topic: "x" })))
        expect(fields(error)).toEqual({ _tag: "AgentCrashed", agent: "crashy", restarts: 0, defect: "boom" })
        expect(yield* balances(orchestrator.identity.wallet, crashy.wallet)).toEqual(afterBatches(1n))
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("streaming: a batch that would exceed the locked maximum is not delivered", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const flood = Agent.streaming({
          name: "flood",
          input: Topic,
          output: Schema.Number,
          maxPrice: Usdc.make("0.25"),
          pricePerBatch: Usdc.make("0.1"),
          run: () => Stream.fromIterable([1, 2, 3, 4])
        })
        const handle = yield* Orchestrator.spawn(flood)
        const error = yield* Effect.flip(collectFirst(Orchestrator.stream(handle, { topic: "x" }), 10))
        expect(fields(error)).toEqual({ _tag: "ChargeExceedsMaximum", agent: "flood", chargeMicros: u("0.1"), chargedMicros: u("0.2"), maximumMicros: u("0.25") })
        const [payment] = yield* orchestrator.payments()
        expect(payment).toMatchObject({ released: u("0.2"), refunded: u("0.05") })
      }).pipe(Effect.provide(world(backend))))
  })
}

