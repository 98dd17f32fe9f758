/**
 * Cold start: process start to the first `GET /health` 200, median of 10 runs, beside
 * the floor measured in the same rounds: a bare `node:http` process answering /health.
 * It prints both and their ratio (target: the service within 3× the bare server). Each
 * run is a fresh process on a fresh DATA_DIR, so it includes creating the SQLite files,
 * migrating, registering the orchestrator and claiming its faucet: the first start of a
 * new Fly machine. A restart on an existing volume is measured too.
 *
 * What runs is what `npm start` and the Docker image run: `sh dist/bundle/start.sh`,
 * rebuilt from the sources first (scripts/build-service.ts, as `prestart` does), which
 * starts the bundle from its V8 code cache. Beside it, in the same rounds: a copy of the
 * bundle without the code cache (compiled from source at each start). `--baseline-tsc`
 * also measures the service as `tsc` compiles it (one ESM file per module).
 *
 * The variants take turns, one start each per round, so a change in the machine's
 * load (other work on its 2 cores) falls on all of them alike.
 *
 * Beside the wall time, the CPU time the service process had used when its first
 * /health 200 arrived (user + system, from /proc; Linux only): less noisy than the
 * wall time on a machine shared with other work.
 *
 * Beside /health, the time to the first `/metrics` 200 on METRICS_PORT: the metrics
 * exporter is loaded after the port opens (src/service/Telemetry.ts), so this is when
 * the process is up in full.
 *
 *   tsx bench/service-coldstart.ts [--runs 10] [--baseline-tsc]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { buildService } from "../scripts/build-service.js"
import { freePort, firstHealthy, loadAverage, median, repoRoot, startProcess, stop, tempDir } from "./service-support.js"

const argv = process.argv.slice(2)
const runsIndex = argv.indexOf("--runs")
const runs = (runsIndex >= 0 ? Number(argv[runsIndex + 1]) : 10) || 10
const baselineTsc = argv.includes("--baseline-tsc")

const bare = `require("node:http").createServer((q, s) => { s.setHeader("content-type", "application/json"); s.end('{"ok":true,"region":"local"}') }).listen(Number(process.env.PORT), "127.0.0.1")`

interface Run {
  readonly healthMs: number
  readonly cpuMs: number | undefined
  readonly metricsMs: number | undefined
}

const clockTicksPerSecond = 100

/** User + system CPU time of a live process, from /proc (undefined where there is none). */
const cpuTimeMs = (pid: number | undefined): number | undefined => {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond
  } catch {
    return undefined
  }
}

/** Polls `url` until 200; the time since `startedAt`. */
const firstOk = async (url: string, startedAt: number, timeoutMs = 60_000) => {
  while (performance.now() - startedAt < timeoutMs) {
    const status = await fetch(url).then(async (r) => (await r.arrayBuffer(), r.status), () => 0)
    if (status === 200) return performance.now() - startedAt
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`${url} not 200 within ${timeoutMs} ms`)
}

/** One start of `command`: until /health (and /metrics) answer; then SIGTERM. */
const measureOnce = async (command: ReadonlyArray<string>, dir: string | undefined): Promise<Run> => {
  const port = await freePort()
  const metricsPort = await freePort()
  const env: Record<string, string> = { PORT: String(port), HOST: "127.0.0.1", METRICS_PORT: String(metricsPort), ...(dir ? { DATA_DIR: dir } : {}) }
  const startedAt = performance.now()
  const child = startProcess(command, env)
  let stderr = ""
  child.stderr!.on("data", (c) => (stderr += c))
  try {
    const healthMs = await firstHealthy(`http://127.0.0.1:${port}`, startedAt)
    const cpuMs = cpuTimeMs(child.pid)
    const metricsMs = dir === undefined ? undefined : await firstOk(`http://127.0.0.1:${metricsPort}/metrics`, startedAt)
    return { healthMs, cpuMs, metricsMs }
  } catch (error) {
    throw new Error(`${String(error)}\n${stderr}`)
  } finally {
    await stop(child)
  }
}

interface Variant {
  readonly label: string
  readonly command: ReadonlyArray<string>
  /** The DATA_DIR of each start (none for the floor). */
  readonly dataDir: () => string | undefined
}

/** `runs` rounds, each starting every variant once, in turn. */
const measure = async (variants: ReadonlyArray<Variant>): Promise<Map<Variant, Array<Run>>> => {
  const results = new Map(variants.map((variant) => [variant, [] as Array<Run>]))
  for (let round = 0; round < runs; round++) {
    for (const variant of variants) {
      const run = await measureOnce(variant.command, variant.dataDir()).catch((error) => {
        throw new Error(`${variant.label}, round ${round + 1}: ${String(error)}`)
      })
      results.get(variant)!.push(run)
    }
  }
  return results
}

/** A copy of the bundle without its code cache, inside node_modules (so its packages resolve). */
const copyWithoutCodeCache = (bundle: string) => {
  const copy = path.join(repoRoot, "node_modules", ".cache", "ringmaster-bench", "bundle-without-code-cache")
  fs.rmSync(copy, { recursive: true, force: true })
  fs.cpSync(bundle, copy, { recursive: true })
  fs.rmSync(path.join(copy, "service.cjs.codecache"), { force: true })
  return copy
}

/** `tsc -p tsconfig.build.json` into a temp dir inside the repo (so node_modules resolve). */
const compileWithTsc = async () => {
  const outDir = path.join(repoRoot, "node_modules", ".cache", "ringmaster-bench", "tsc")
  fs.rmSync(outDir, { recursive: true, force: true })
  const tsc = spawn(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", outDir], {
    cwd: repoRoot,
    stdio: "ignore"
  })
  await new Promise((resolve) => tsc.once("exit", resolve))
  const entry = path.join(outDir, "service", "main.js")
  if (!fs.existsSync(entry)) throw new Error(`tsc did not emit ${entry}`)
  return entry
}

const main = async () => {
  const buildStart = performance.now()
  await buildService()
  const bundle = path.join(repoRoot, "dist", "bundle")
  const size = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size / 1e6 : 0)
  console.log(
    `built in ${((performance.now() - buildStart) / 1000).toFixed(1)} s (bundle ${size(path.join(bundle, "service.cjs")).toFixed(1)} MB, ` +
      `code cache ${size(path.join(bundle, "service.cjs.codecache")).toFixed(1)} MB); node ${process.version}; load average ${loadAverage()}`
  )
  const withoutCache = copyWithoutCodeCache(bundle)
  const unbundled = baselineTsc ? [process.execPath, await compileWithTsc()] : undefined

  const volume = tempDir()
  const floor: Variant = { label: "bare node:http (floor)", command: [process.execPath, "-e", bare], dataDir: () => undefined }
  const npmStart: Variant = { label: "npm start (bundle + code cache), first start", command: ["sh", path.join(bundle, "start.sh")], dataDir: tempDir }
  const variants: Array<Variant> = [
    floor,
    npmStart,
    { label: "npm start, restart on the same volume", command: ["sh", path.join(bundle, "start.sh")], dataDir: () => volume },
    { label: "bundle without its code cache", command: [process.execPath, path.join(withoutCache, "service.js")], dataDir: tempDir },
    ...(unbundled ? [{ label: "baseline: tsc output (no bundle)", command: unbundled, dataDir: tempDir }] : [])
  ]
  const loadBefore = loadAverage()
  const results = await measure(variants)

  const ms = (n: number) => n.toFixed(0).padStart(5)
  const row = (label: string, results: Array<Run>) => {
    const health = results.map((r) => r.healthMs)
    const metrics = results.flatMap((r) => (r.metricsMs === undefined ? [] : [r.metricsMs]))
    const cpu = results.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs]))
    console.log(
      `${label.padEnd(50)} median ${ms(median(health))} ms   min ${ms(Math.min(...health))}   max ${ms(Math.max(...health))}` +
        (cpu.length > 0 ? `   CPU median ${ms(median(cpu))} ms` : "") +
        (metrics.length > 0 ? `   first /metrics: median ${ms(median(metrics))} ms` : "")
    )
  }
  console.log(`\nprocess start → first /health 200, ${runs} rounds (one start of each per round); load average before ${loadBefore}`)
  for (const [variant, runs] of results) row(variant.label, runs)
  const serviceMs = median(results.get(npmStart)!.map((r) => r.healthMs))
  const bareMs = median(results.get(floor)!.map((r) => r.healthMs))
  const ratio = serviceMs / bareMs
  const cpu = (variant: Variant) => median(results.get(variant)!.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs])))
  console.log(
    `\nnpm start ${serviceMs.toFixed(0)} ms, bare node:http ${bareMs.toFixed(0)} ms: ${ratio.toFixed(2)}× ` +
      `(target ≤ 3×: ${ratio <= 3 ? "met" : "missed"}); CPU to first /health ${cpu(npmStart).toFixed(0)} ms and ` +
      `${cpu(floor).toFixed(0)} ms (${(cpu(npmStart) / cpu(floor)).toFixed(1)}×); load average now ${loadAverage()}`
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
