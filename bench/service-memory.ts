/**
 * Memory: peak RSS of the service process holding 10,000 pending escrows and 1,000
 * spawned sub-agents (target ≤ 250 MB).
 *
 * Two roles in one file. The driver starts this file with `--role service`: the
 * real service (`runMain`, embedded SQLite ledger, journal, metrics, HTTP) with a
 * pipeline layer that, while the service builds, spawns 1,000 sub-agents through
 * the `Orchestrator` (each registered in the ledger as referred by the
 * orchestrator) and opens 10,000 escrows payer → orchestrator through the service's
 * journaled `Escrow`, leaving them pending. Once `/health` answers, the driver reads
 * the process's VmHWM (peak RSS) and VmRSS from /proc, checks the in-flight and
 * sub-agent gauges on /metrics, and sends one paid /inference through it all.
 *
 *   tsx bench/service-memory.ts [--escrows 10000] [--agents 1000]
 */
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { Duration, Effect, Layer, Schema } from "effect"
import * as Agent from "../src/agents/Agent.js"
import { Accounts, fromLedger } from "../src/agents/Accounts.js"
import * as Orchestrator from "../src/agents/Orchestrator.js"
import * as Usdc from "../src/domain/Usdc.js"
import { Escrow } from "../src/escrow/Escrow.js"
import { Ledger } from "../src/ledger/Ledger.js"
import { Identity } from "../src/service/Identity.js"
import { runMain } from "../src/service/Launch.js"
import * as Pipeline from "../src/service/Pipeline.js"
import { freePort, firstHealthy, loadAverage, startProcess, stop, tempDir } from "./service-support.js"

const argv = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1]! : fallback
}
const escrows = Number(option("escrows", "10000"))
const agents = Number(option("agents", "1000"))

const NoOp = Agent.make({
  name: "specialist",
  input: Schema.String,
  output: Schema.String,
  price: Usdc.make("0.0001"),
  run: (input) => Effect.succeed(input)
})

/** The service role: a pipeline whose construction loads the process. */
const loadedPipeline = Layer.scoped(
  Pipeline.Pipeline,
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const identity = yield* Identity
    const escrow = yield* Escrow
    const orchestrator = yield* Orchestrator.make({ name: "bench-orchestrator", wallet: identity.wallet, existing: true }).pipe(
      Effect.provideService(Accounts, fromLedger(ledger)),
      Effect.provideService(Escrow, escrow)
    )
    yield* Effect.forEach(Array.from({ length: agents }, (_, i) => i), (i) => orchestrator.spawn(NoOp, { name: `specialist-${i}` }), {
      concurrency: 64,
      discard: true
    })
    const payer = yield* ledger.registerAgent({ name: "bench-payer" })
    yield* ledger.deposit(payer.wallet, Usdc.make("100000"))
    yield* Effect.forEach(
      Array.from({ length: escrows }, (_, i) => i),
      (i) =>
        escrow.create({
          payer: payer.wallet,
          payee: identity.wallet,
          amount: Usdc.make("0.001"),
          description: `held ${i}`,
          metadata: { fly_region: "iad" },
          timeout: Duration.hours(1)
        }),
      { concurrency: 64, discard: true }
    )
    return {
      inference: Pipeline.deterministicInference,
      tasks: new Map(),
      subAgents: Effect.map(orchestrator.handles, (h) => h.length)
    }
  })
)

const service = () => runMain({ pipeline: loadedPipeline })

const status = (pid: number) => {
  const text = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN)
  return { peakMb: kb("VmHWM") / 1024, rssMb: kb("VmRSS") / 1024 }
}

const driver = async () => {
  const port = await freePort()
  const metricsPort = await freePort()
  const base = `http://127.0.0.1:${port}`
  const child = startProcess([process.execPath, "--import", "tsx", fileURLToPath(import.meta.url), "--role", "service", "--escrows", String(escrows), "--agents", String(agents)], {
    PORT: String(port),
    HOST: "127.0.0.1",
    METRICS_PORT: String(metricsPort),
    DATA_DIR: tempDir(),
    LOG_LEVEL: "Warning",
    SWEEP_INTERVAL: "1 second"
  })
  let stderr = ""
  child.stderr!.on("data", (c) => (stderr += c))
  const started = performance.now()
  try {
    await firstHealthy(base, started, 900_000, 200).catch((e) => {
      throw new Error(`${String(e)}\n${stderr}`)
    })
    const loadedAfterS = (performance.now() - started) / 1000
    await new Promise((r) => setTimeout(r, 2_500)) // one sweep: the sub-agent gauge is refreshed
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    const gauge = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN)
    const info = await (await fetch(`${base}/info`)).json() as { wallet_address: string }
    const memory = status(child.pid!)
    console.log(`service ready after ${loadedAfterS.toFixed(1)} s (tsx); load average ${loadAverage()}`)
    console.log(`orchestrator ${info.wallet_address}`)
    console.log(`escrows in flight (gauge): ${gauge("ringmaster_escrows_in_flight")}   sub-agents (gauge): ${gauge("ringmaster_sub_agents")}`)
    console.log(`peak RSS (VmHWM) ${memory.peakMb.toFixed(1)} MB   current RSS ${memory.rssMb.toFixed(1)} MB   target ≤ 250 MB`)
  } finally {
    await stop(child, 60_000)
  }
}

if (option("role", "driver") === "service") service()
else {
  driver().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
