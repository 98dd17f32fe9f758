/**
 * Cold start: process start to the first `GET /health` 200, median of 10 runs
 * (target ≤ 400 ms). Each run is a fresh process on a fresh DATA_DIR, so it includes
 * creating the SQLite files, migrating, registering the orchestrator and claiming
 * its faucet: the first start of a new Fly machine. A restart on an existing volume
 * is measured too, and in the same run the floor: a bare `node:http` process
 * answering /health.
 *
 * What runs is what `npm start` and the Docker image run: the bundle
 * `dist/bundle/service.js`, rebuilt from the sources first with its code cache
 * (scripts/build-service.ts, as `prestart` does). In the same run, the same bundle
 * with its code cache moved aside (compiled from source at each start). `--baseline-tsc`
 * also measures the service as `tsc` compiles it (one ESM file per module, what
 * `npm start` ran before the bundle).
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

const measure = async (command: ReadonlyArray<string>, dataDir: () => string | undefined): Promise<Array<Run>> => {
  const results: Array<Run> = []
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const metricsPort = await freePort()
    const dir = dataDir()
    const env: Record<string, string> = { PORT: String(port), HOST: "127.0.0.1", METRICS_PORT: String(metricsPort), ...(dir ? { DATA_DIR: dir } : {}) }
    const startedAt = performance.now()
    const child = startProcess(command, env)
    let stderr = ""
    child.stderr!.on("data", (c) => (stderr += c))
    try {
      const healthMs = await firstHealthy(`http://127.0.0.1:${port}`, startedAt)
      const cpuMs = cpuTimeMs(child.pid)
      const metricsMs = dir === undefined ? undefined : await firstOk(`http://127.0.0.1:${metricsPort}/metrics`, startedAt)
      results.push({ healthMs, cpuMs, metricsMs })
    } catch (error) {
      throw new Error(`${String(error)}\n${stderr}`)
    } finally {
      await stop(child)
    }
  }
  return results
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
  const bundled = [process.execPath, path.join(repoRoot, "dist", "bundle", "service.js")]
  console.log(`bundled in ${((performance.now() - buildStart) / 1000).toFixed(1)} s; node ${process.version}; load average ${loadAverage()}`)
  const unbundled = baselineTsc ? [process.execPath, await compileWithTsc()] : undefined

  const floor = await measure([process.execPath, "-e", bare], () => undefined)
  const fresh = await measure(bundled, tempDir)
  const volume = tempDir()
  const restart = await measure(bundled, () => volume)
  const cacheFile = path.join(repoRoot, "dist", "bundle", "service.cjs.codecache")
  if (!fs.existsSync(cacheFile)) throw new Error(`the build wrote no code cache (${cacheFile}): see its warning above`)
  fs.renameSync(cacheFile, `${cacheFile}.aside`)
  const uncached = await measure(bundled, tempDir).finally(() => fs.renameSync(`${cacheFile}.aside`, cacheFile))
  const tscFresh = unbundled ? await measure(unbundled, tempDir) : undefined

  const ms = (n: number) => n.toFixed(0).padStart(5)
  const row = (label: string, results: Array<Run>) => {
    const health = results.map((r) => r.healthMs)
    const metrics = results.flatMap((r) => (r.metricsMs === undefined ? [] : [r.metricsMs]))
    const cpu = results.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs]))
    console.log(
      `${label.padEnd(52)} median ${ms(median(health))} ms   min ${ms(Math.min(...health))}   max ${ms(Math.max(...health))}` +
        (cpu.length > 0 ? `   CPU median ${ms(median(cpu))} ms` : "") +
        (metrics.length > 0 ? `   first /metrics: median ${ms(median(metrics))} ms` : "")
    )
  }
  console.log(`\nprocess start → first /health 200, ${runs} runs each`)
  row("bare node:http (floor)", floor)
  row("service bundle, first start (fresh DATA_DIR)", fresh)
  row("service bundle, restart (existing DATA_DIR)", restart)
  row("same bundle without its code cache, first start", uncached)
  if (tscFresh) row("baseline: tsc output, first start (fresh DATA_DIR)", tscFresh)
  console.log(`target: ≤ 400 ms median; load average now ${loadAverage()}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
