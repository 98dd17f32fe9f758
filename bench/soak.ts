/**
 * `npm run soak`: a long randomized run of ledger operations (register, deposit, faucet,
 * create, release in full and in parts, cancel, expire, mandates) checked against an
 * independent model after every step, with `ledger.verify` (every invariant,
 * recomputed from postings) run throughout.
 *
 *   npm run soak -- --ops 1000000 --seed 7 [--backend memory|sqlite]
 *
 * The memory backend runs the same engine as SQLite without I/O, so a million steps fit
 * in minutes; `--backend sqlite` runs the real file (synchronous=NORMAL to keep a
 * sequential run's fsyncs from dominating) for a shorter soak of the storage path.
 */
import { Clock, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Ledger } from "../src/ledger/Ledger.js"
import * as LedgerConfig from "../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../src/ledger/MemoryLedger.js"
import * as SqlLedger from "../src/ledger/SqlLedger.js"
import { runRandomOps } from "../test/ledger/model.js"

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const ops = Number(arg("ops", "1000000"))
const seed = Number(arg("seed", "7"))
const backend = arg("backend", "memory")
const verifyEvery = Number(arg("verify-every", backend === "memory" ? "20000" : "2000"))

const ledgerLayer = backend === "sqlite"
  ? SqlLedger.layerSqlite({ dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-soak-")), synchronous: "NORMAL" })
  : MemoryLedger.layer
const config = LedgerConfig.layer({ faucetDailyCap: 1_000_000 })

/**
 * A clock the run moves by hand. TestClock would do, but its `adjust` waits on the
 * live clock for other fibers to suspend (milliseconds per call), which would make a
 * million-step soak mostly idle time.
 */
// Frozen between steps, as the model expects: only `advance` moves it.
let nowMs = Date.now()
const live = Clock.make()
const manualClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => nowMs,
  unsafeCurrentTimeNanos: () => BigInt(nowMs) * 1_000_000n,
  currentTimeMillis: Effect.sync(() => nowMs),
  currentTimeNanos: Effect.sync(() => BigInt(nowMs) * 1_000_000n),
  sleep: (duration) => live.sleep(duration)
}

const main = Effect.gen(function*() {
  const ledger = yield* Ledger
  const started = performance.now()
  let lastReport = started
  const summary = yield* runRandomOps(ledger, seed, ops, {
    verifyEvery,
    balancesEvery: 1,
    maxAgents: 40,
    advance: (ms) => Effect.sync(() => void (nowMs += ms)),
    onStep: ({ step }) => {
      const now = performance.now()
      if (now - lastReport > 10_000) {
        lastReport = now
        console.log(`  ${step.toLocaleString("en-US")} ops, ${Math.round(step / ((now - started) / 1000)).toLocaleString("en-US")} ops/s`)
      }
    }
  })
  const final = yield* ledger.verify
  const seconds = (performance.now() - started) / 1000
  console.log(JSON.stringify({
    backend,
    seed,
    ops: summary.steps,
    seconds: Math.round(seconds),
    opsPerSecond: Math.round(summary.steps / seconds),
    agents: summary.agents,
    escrows: summary.escrows,
    releasedMicros: summary.releasedMicros.toString(),
    feesMicros: summary.feesMicros.toString(),
    verifications: summary.verifications + 1,
    violations: final.violations.length,
    outcomes: summary.outcomes
  }, null, 2))
  if (final.violations.length > 0) return yield* Effect.dieMessage(`invariants broken: ${JSON.stringify(final.violations.slice(0, 5))}`)
}).pipe(Effect.provide(Layer.provide(ledgerLayer, config)), Effect.withClock(manualClock))

Effect.runPromise(main).then(
  () => console.log(`soak passed: ${ops.toLocaleString("en-US")} operations, every invariant held`),
  (error) => {
    console.error("soak FAILED:", error)
    process.exit(1)
  }
)
