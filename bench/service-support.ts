/**
 * Shared by the service benchmarks: which command starts the service (the bundle's
 * `start.sh`, as `npm start` and the image run it, when it is there and newer than the
 * sources; otherwise the sources through tsx, which is slower to
 * start and says so), free ports, waiting for /health, and percentiles.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "../scripts/freePort.js"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p"` profiles the service process. */
const extraNodeArgs = (process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((a) => a.length > 0)

const newestMtime = (dir: string): number => {
  let newest = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs)
  }
  return newest
}

/**
 * What `npm start` runs when the bundle is built and fresh: `sh dist/bundle/start.sh`, or
 * `node dist/bundle/service.js` (the same launcher) when `BENCH_NODE_ARGS` asks for node
 * flags, which only a direct node command line takes. Else
 * `node --import tsx src/service/main.ts`.
 */
export const serviceCommand = (): { readonly argv: ReadonlyArray<string>; readonly kind: "start.sh" | "bundle" | "tsx" } => {
  const bundle = path.join(repoRoot, "dist", "bundle")
  const built = path.join(bundle, "service.js")
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newestMtime(path.join(repoRoot, "src"))) {
    const startScript = path.join(bundle, "start.sh")
    return extraNodeArgs.length === 0 && fs.existsSync(startScript)
      ? { argv: ["sh", startScript], kind: "start.sh" }
      : { argv: [process.execPath, built], kind: "bundle" }
  }
  return { argv: [process.execPath, "--import", "tsx", path.join(repoRoot, "src", "service", "main.ts")], kind: "tsx" }
}

export { freePort }

export const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-"))


export const startProcess = (argv: ReadonlyArray<string>, env: Record<string, string>): ChildProcess =>
  spawn(argv[0]!, [...(argv[0] === process.execPath ? extraNodeArgs : []), ...argv.slice(1)], {
    cwd: repoRoot,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", NODE_ENV: "production", ...env },
    stdio: ["ignore", "ignore", "pipe"]
  })

/** Polls GET /health every `everyMs` until 200; resolves with the time it took, rejects after `timeoutMs`. */
export const firstHealthy = async (base: string, startedAt: number, timeoutMs = 60_000, everyMs = 2): Promise<number> => {
  while (performance.now() - startedAt < timeoutMs) {
    try {
      const response = await fetch(`${base}/health`)
      await response.arrayBuffer()
      if (response.status === 200) return performance.now() - startedAt
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`${base}/health not 200 within ${timeoutMs} ms`)
}

export const stop = (child: ChildProcess, timeoutMs = 15_000) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const median = (values: ReadonlyArray<number>) => percentile([...values].sort((a, b) => a - b), 50)

export const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(" ")
