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
 * sub-agent gauges on /metrics, and asks the process where its memory is
 * (`process.memoryUsage()`, on SIGUSR2).
 *
 * The service role runs as `npm start` and the Docker image run the service: node on
 * an esbuild bundle made with the same options (scripts/build-service.ts), here of
 * this file, built first into node_modules/.cache/ringmaster-bench/. `--tsx` runs
 * the role through tsx instead, as this benchmark did before (tsx's compiler and
 * source maps stay in the process: not what production runs).
 *
 *   tsx bench/service-memory.ts [--escrows 10000] [--agents 1000] [--tsx]
 */
import * as fs from "node:fs"
import * as path from "node:path"
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
import { freePort, firstHealthy, loadAverage, repoRoot, startProcess, stop, tempDir } from "./service-support.js"

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

const service = () => {
  // For the driver: where the memory is, at the moment it asks.
  process.on("SIGUSR2", () => process.stderr.write(`MEMORY ${JSON.stringify(process.memoryUsage())}\n`))
  runMain({ pipeline: loadedPipeline })
}

/** This file bundled as the service is (scripts/build-service.ts): the command that runs its service role. */
const bundledRole = async (): Promise<ReadonlyArray<string>> => {
  // Imported here, and left out of the bundle: the service role never loads the bundler.
  const esbuild = await import("esbuild")
  const { bundleOptions } = await import("../scripts/build-service.js")
  const outdir = path.join(repoRoot, "node_modules", ".cache", "ringmaster-bench", "memory")
  fs.rmSync(outdir, { recursive: true, force: true })
  const options = bundleOptions({ "service-memory": fileURLToPath(import.meta.url) }, outdir)
  await esbuild.build({ ...options, external: [...(options.external ?? []), "esbuild"] })
  return [process.execPath, path.join(outdir, "service-memory.js")]
}

const status = (pid: number) => {
  const text = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const mb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN) / 1024
  return { peakMb: mb("VmHWM"), rssMb: mb("VmRSS"), anonMb: mb("RssAnon"), fileMb: mb("RssFile"), shmemMb: mb("RssShmem") }
}

/** `process.memoryUsage()` of the child, which prints it on SIGUSR2. */
const memoryUsageOf = async (child: ReturnType<typeof startProcess>, stderr: () => string) => {
  const before = stderr().length
  child.kill("SIGUSR2")
  for (let i = 0; i < 200; i++) {
    const line = /MEMORY (\{.*\})/.exec(stderr().slice(before))
    if (line) return JSON.parse(line[1]!) as NodeJS.MemoryUsage
    await new Promise((r) => setTimeout(r, 10))
  }
  return undefined
}

const driver = async () => {
  const port = await freePort()
  const metricsPort = await freePort()
  const base = `http://127.0.0.1:${port}`
  const viaTsx = argv.includes("--tsx")
  const role = viaTsx ? [process.execPath, "--import", "tsx", fileURLToPath(import.meta.url)] : await bundledRole()
  const child = startProcess([...role, "--role", "service", "--escrows", String(escrows), "--agents", String(agents)], {
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
    const usage = await memoryUsageOf(child, () => stderr)
    const runs = viaTsx ? "under tsx (--tsx)" : `node on the bundle, as npm start runs it (${path.relative(repoRoot, role[1]!)})`
    console.log(`service role: ${runs}; ready after ${loadedAfterS.toFixed(1)} s; load average ${loadAverage()}`)
    console.log(`orchestrator ${info.wallet_address}`)
    console.log(`escrows in flight (gauge): ${gauge("ringmaster_escrows_in_flight")}   sub-agents (gauge): ${gauge("ringmaster_sub_agents")}`)
    console.log(`peak RSS (VmHWM) ${memory.peakMb.toFixed(1)} MB   current RSS ${memory.rssMb.toFixed(1)} MB   target ≤ 250 MB`)
    console.log(`  RSS: anonymous ${memory.anonMb.toFixed(1)} MB, file-backed ${memory.fileMb.toFixed(1)} MB, shared ${memory.shmemMb.toFixed(1)} MB`)
    if (usage !== undefined) {
      const mb = (n: number) => (n / 1048576).toFixed(1)
      console.log(`  V8 heap used ${mb(usage.heapUsed)} MB of ${mb(usage.heapTotal)} MB; external ${mb(usage.external)} MB (array buffers ${mb(usage.arrayBuffers)} MB)`)
      console.log(`  outside the V8 heap: ${mb(usage.rss - usage.heapTotal)} MB (code, native allocations such as SQLite's page cache and statements, node itself)`)
    }
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
