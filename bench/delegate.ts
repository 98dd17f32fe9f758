/**
 * `npm run bench:delegate`: what one paid `delegate` costs over calling the same
 * `run` directly. A no-op agent, the embedded ledger, 1 and 64 concurrent tasks:
 *
 *   direct     agent.run(input, task)                    (no escrow, no checks)
 *   ledger     createEscrow + releaseEscrow on the Ledger (the settlement floor)
 *   delegate   Orchestrator.delegate(handle, input)      (validate, budget, lock,
 *                                                        run, validate, release)
 *
 * so the orchestrator's own overhead is `delegate − ledger`, and the total is
 * `delegate − direct`.
 *
 * Options: --seconds N per measurement (default 3); --ledger sqlite|memory (default
 * sqlite, in a temp dir); --sync FULL|NORMAL (SQLite durability, default FULL).
 */
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Accounts } from "../src/agents/Accounts.js"
import * as Agent from "../src/agents/Agent.js"
import { Orchestrator } from "../src/agents/Orchestrator.js"
import * as Usdc from "../src/domain/Usdc.js"
import { Escrow } from "../src/escrow/Escrow.js"
import * as EscrowSqlite from "../src/escrow/EscrowSqlite.js"
import { Ledger } from "../src/ledger/Ledger.js"
import * as LedgerConfig from "../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../src/ledger/MemoryLedger.js"
import { type Measured, measure as measureLoop } from "./measure.js"

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const seconds = Math.min(Math.max(Number(arg("seconds", "3")), 0.5), 60)
const ledgerKind = arg("ledger", "sqlite")
const sync = arg("sync", "FULL") === "NORMAL" ? "NORMAL" : "FULL"
/** A bound on the work of one measurement, whatever the time budget. */
const MAX_TASKS = 2_000_000

const Input = Schema.Struct({ n: Schema.Number })
const Output = Schema.Struct({ n: Schema.Number })
const noop = Agent.make({ name: "noop", input: Input, output: Output, price: Usdc.make("0.01"), run: ({ n }) => Effect.succeed({ n }) })

const measure = (concurrency: number, task: Effect.Effect<unknown, unknown>) =>
  measureLoop(concurrency, task, { seconds, maxOperations: MAX_TASKS })

const bench = Effect.gen(function*() {
  const orchestrator = yield* Orchestrator
  const ledger = yield* Ledger
  const handle = yield* orchestrator.spawn(noop, { concurrency: 1_024 })
  const payee = yield* ledger.registerAgent({ name: "ledger-floor-payee", referralCode: orchestrator.identity.referralCode })

  const task: Agent.Task = {
    escrowId: "esc_00000000000bench" as never,
    payer: orchestrator.identity.wallet,
    self: handle.identity,
    lockedMicros: Usdc.make("0.01"),
    restarts: 0,
    charge: () => Effect.void,
    used: Effect.succeed(Usdc.zero)
  }
  const direct = noop.run({ n: 1 }, task)
  const floor = Effect.flatMap(
    ledger.createEscrow({ payer: orchestrator.identity.wallet, payee: payee.wallet, amount: Usdc.make("0.01"), description: "bench" }),
    (escrow) => ledger.releaseEscrow(escrow.id)
  )
  const paid = orchestrator.delegate(handle, { n: 1 })

  // Warm up every path (JIT, statement cache, pool).
  yield* measure(8, paid).pipe(Effect.zipRight(measure(8, floor)), Effect.zipRight(measure(1, direct)))

  const rows: Array<[string, Measured, Measured, Measured]> = []
  for (const concurrency of [1, 64]) {
    const d = yield* measure(concurrency, direct)
    const l = yield* measure(concurrency, floor)
    const p = yield* measure(concurrency, paid)
    rows.push([`c=${concurrency}`, d, l, p])
  }
  const check = yield* ledger.verify
  return { rows, violations: check.violations.length }
})

const fmt = (n: number, digits = 3) => n.toFixed(digits).padStart(12)
const rate = (n: number) => Math.round(n).toLocaleString("en-US").padStart(12)

const program = Effect.gen(function*() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-delegate-"))
  try {
    const ledgerLayer = ledgerKind === "memory"
      ? Layer.provideMerge(Escrow.layerFromLedger, MemoryLedger.layer).pipe(Layer.provide(LedgerConfig.layer({ faucetDailyCap: 1_000_000 })))
      : EscrowSqlite.layer({ dataDir: dir, synchronous: sync, ledger: { faucetDailyCap: 1_000_000 } })
    const world = Orchestrator.layer({ name: "bench-orchestrator", deposit: Usdc.make("10000000") }).pipe(
      Layer.provideMerge(Accounts.layerFromLedger),
      Layer.provideMerge(ledgerLayer)
    )
    const { rows, violations } = yield* Effect.provide(bench, world)
    const ledgerLabel = ledgerKind === "memory" ? "in-memory ledger" : `SQLite ledger (WAL, synchronous=${sync})`
    console.log(
      `\nOne paid delegate vs calling run directly — no-op agent, ${ledgerLabel}, ${seconds}s per cell, ` +
        `${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}\n`
    )
    console.log("              direct run   ledger floor  paid delegate   delegate/direct   overhead vs direct   overhead vs ledger")
    for (const [label, d, l, p] of rows) {
      console.log(
        `${label.padEnd(6)} p50 ms ${fmt(d.p50Ms)}  ${fmt(l.p50Ms)}  ${fmt(p.p50Ms)}   ${fmt(p.p50Ms / Math.max(d.p50Ms, 1e-6), 0)}x   ${fmt(p.p50Ms - d.p50Ms)} ms      ${fmt(p.p50Ms - l.p50Ms)} ms`
      )
      console.log(`       p99 ms ${fmt(d.p99Ms)}  ${fmt(l.p99Ms)}  ${fmt(p.p99Ms)}`)
      console.log(
        `       tasks/s ${rate(d.perSecond)} ${rate(l.perSecond)}  ${rate(p.perSecond)}   ${fmt(d.perSecond / Math.max(p.perSecond, 1e-6), 0)}x slower`
      )
      console.log(`       cpu µs  ${fmt(d.cpuUsPerOperation, 1)}  ${fmt(l.cpuUsPerOperation, 1)}  ${fmt(p.cpuUsPerOperation, 1)}   (CPU per task)`)
    }
    const [c1, c64] = [rows[0]!, rows[1]!]
    console.log(
      `\ntargets: median overhead < 1 ms at c=1: ${(c1[3].p50Ms - c1[1].p50Ms).toFixed(3)} ms delegate − direct ` +
        `(${(c1[3].p50Ms - c1[2].p50Ms).toFixed(3)} ms over the ledger floor); ` +
        `≥ 5,000 paid tasks/s at c=64: ${Math.round(c64[3].perSecond).toLocaleString("en-US")}/s; ledger invariant violations: ${violations}`
    )
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
