/**
 * Cold start: process start to the first `GET /health` 200, median of 10 runs
 * (target ≤ 400 ms). Each run is a fresh process on a fresh DATA_DIR, so it includes
 * creating the SQLite files, migrating, registering the orchestrator and claiming
 * its faucet: the first start of a new Fly machine. A restart on an existing volume
 * is measured too, and in the same run the floor: a bare `node:http` process
 * answering /health.
 *
 *   tsx bench/service-coldstart.ts [--runs 10]
 */
import { freePort, firstHealthy, loadAverage, median, serviceCommand, startProcess, stop, tempDir } from "./service-support.js"

const argv = process.argv.slice(2)
const runs = Number(argv[argv.indexOf("--runs") + 1] ?? 10) || 10

const bare = `require("node:http").createServer((q, s) => { s.setHeader("content-type", "application/json"); s.end('{"ok":true,"region":"local"}') }).listen(Number(process.env.PORT), "127.0.0.1")`

const measure = async (argvOf: () => ReadonlyArray<string>, env: () => Record<string, string>) => {
  const times: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const startedAt = performance.now()
    const child = startProcess(argvOf(), { PORT: String(port), HOST: "127.0.0.1", ...env() })
    let stderr = ""
    child.stderr!.on("data", (c) => (stderr += c))
    try {
      times.push(await firstHealthy(`http://127.0.0.1:${port}`, startedAt))
    } catch (error) {
      throw new Error(`${String(error)}\n${stderr}`)
    } finally {
      await stop(child)
    }
  }
  return times
}

const main = async () => {
  const command = serviceCommand()
  console.log(`service command: ${command.argv.slice(1).join(" ")} (${command.kind}); node ${process.version}; load average ${loadAverage()}`)
  if (command.kind === "tsx") console.log("  (no fresh dist/: run `npm run build` first to measure what `npm start` and the image run)")
  const metrics = async () => ({ METRICS_PORT: String(await freePort()) })

  const floor = await measure(() => [process.execPath, "-e", bare], () => ({}))
  const freshEnv: Array<Record<string, string>> = []
  for (let i = 0; i < runs; i++) freshEnv.push({ DATA_DIR: tempDir(), ...(await metrics()) })
  let n = 0
  const fresh = await measure(() => command.argv, () => freshEnv[n++]!)
  const volume = tempDir()
  const restartEnv: Array<Record<string, string>> = []
  for (let i = 0; i < runs; i++) restartEnv.push({ DATA_DIR: volume, ...(await metrics()) })
  let m = 0
  const restart = await measure(() => command.argv, () => restartEnv[m++]!)

  const row = (label: string, t: Array<number>) =>
    console.log(`${label.padEnd(44)} median ${median(t).toFixed(0).padStart(5)} ms   min ${Math.min(...t).toFixed(0).padStart(5)} ms   max ${Math.max(...t).toFixed(0).padStart(5)} ms`)
  console.log(`\nprocess start → first /health 200, ${runs} runs each`)
  row("bare node:http (floor)", floor)
  row("service, first start (fresh DATA_DIR)", fresh)
  row("service, restart (existing DATA_DIR)", restart)
  console.log(`target: ≤ 400 ms median; load average now ${loadAverage()}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
