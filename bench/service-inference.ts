/**
 * `/inference` end to end under load: 64 concurrent keep-alive loopback connections
 * (undici `Pool`), each a client in a loop, for `--seconds` after a 2 s warm-up.
 * Prints paid requests/s and p50/p99 latency, and in the same run the same figures
 * for `GET /health` on the same process (the transport's ceiling for this service),
 * with the service's CPU time per request (what a busy shared machine disturbs least).
 * Target: ≥ 1,500 paid requests/s (each a mint and an inference) with p99 < 100 ms
 * on the 2-core machine.
 *
 * Every paid request is what a client does, so it is two HTTP requests: the payer
 * mints a single-use payment token for the price and payee of `/inference`'s 402
 * challenge (`POST /api/payment-tokens` with its API key), then sends
 * `POST /inference` with `Authorization: Payment <token>`. The challenge is read once
 * at set-up (the prompt, hence the price, is the same every time). The paid figure
 * counts the pair; the mint's and the inference's latencies are printed apart too.
 * The inference is the real thing: token redemption, escrow create (journaled), the
 * default pipeline, release, on the embedded SQLite ledger with durable commits
 * (synchronous=FULL), group-committed. The payer is funded through a large faucet
 * amount (FAUCET_AMOUNT).
 *
 *   tsx bench/service-inference.ts [--seconds 10] [--concurrency 64] [--bundle FILE]...
 *
 * `--bundle FILE` (repeatable) runs that built bundle instead of `npm start`'s, one
 * after the other in the same run: a baseline build and a changed one, back to back,
 * unaffected by sources others are editing meanwhile. Build one with
 * `tsx scripts/build-service.ts --dist node_modules/.cache/NAME` (inside the repo, so
 * the native addons still resolve from node_modules).
 */
import { Pool } from "undici"
import * as fs from "node:fs"
import * as path from "node:path"
import { freePort, firstHealthy, loadAverage, percentile, serviceCommand, startProcess, stop, tempDir } from "./service-support.js"

const argv = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const seconds = option("seconds", 10)
const concurrency = option("concurrency", 64)
const WARMUP_MS = 2_000
const bundles = argv.flatMap((a, i) => (a === "--bundle" && argv[i + 1] !== undefined ? [path.resolve(argv[i + 1]!)] : []))

const json = async (pool: Pool, method: "GET" | "POST", path: string, body?: unknown, key?: string, authorization?: string) => {
  const headers: Record<string, string> = { "content-type": "application/json" }
  if (key !== undefined) headers["authorization"] = `Bearer ${key}`
  if (authorization !== undefined) headers["authorization"] = authorization
  const response = await pool.request({ method, path, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const text = await response.body.text()
  return { status: response.statusCode, body: text.length > 0 ? JSON.parse(text) : null }
}

/**
 * CPU time (user + system) the service process has used, in ms, from /proc (Linux; 0
 * elsewhere). Per request it is the figure that other work on a shared machine
 * disturbs least: throughput falls when a neighbour takes a core, CPU per request
 * hardly moves.
 */
const cpuMsOf = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return 0
  }
}
/** `getconf CLK_TCK` on Linux. */
const CLOCK_TICKS_PER_SECOND = 100

interface Result {
  /** Service CPU time per measured request, µs. */
  readonly cpuUsPerRequest: number
  readonly requests: number
  readonly errors: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

/**
 * `concurrency` clients in a loop for the window; latencies of the measured part only.
 * `request` is told whether it falls in the measured part, so it can time its own steps.
 */
const drive = async (request: (measured: boolean) => Promise<number>, servicePid: number | undefined): Promise<Result> => {
  const latencies: Array<number> = []
  let cpuAtStart = 0
  const startCpuClock = setTimeout(() => (cpuAtStart = cpuMsOf(servicePid)), WARMUP_MS)
  let errors = 0
  const start = performance.now()
  const measureFrom = start + WARMUP_MS
  const end = measureFrom + seconds * 1000
  const client = async () => {
    while (performance.now() < end) {
      const t = performance.now()
      const status = await request(t >= measureFrom).catch(() => 0)
      const done = performance.now()
      if (t >= measureFrom) {
        latencies.push(done - t)
        if (status !== 200) errors++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client))
  clearTimeout(startCpuClock)
  const cpuMs = cpuMsOf(servicePid) - cpuAtStart
  latencies.sort((a, b) => a - b)
  return { cpuUsPerRequest: latencies.length === 0 ? 0 : (cpuMs * 1000) / latencies.length, requests: latencies.length, errors, perSecond: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

const measure = async (command: { readonly argv: ReadonlyArray<string>; readonly kind: string }) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const child = startProcess(command.argv, {
    PORT: String(port),
    HOST: "127.0.0.1",
    METRICS_PORT: String(await freePort()),
    DATA_DIR: tempDir(),
    FAUCET_AMOUNT: "100000",
    RATE_LIMIT_PER_AGENT: "1000000",
    LOG_LEVEL: "Warning"
  })
  let stderr = ""
  child.stderr!.on("data", (c) => (stderr += c))
  try {
    await firstHealthy(base, performance.now(), 120_000, 50).catch((e) => {
      throw new Error(`${String(e)}\n${stderr}`)
    })
    const pool = new Pool(base, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 })
    const orchestrator = (await json(pool, "GET", "/info")).body.wallet_address as string
    const payer = (await json(pool, "POST", "/api/agents", { agent_name: "bench-payer" })).body
    const claim = await json(pool, "POST", "/api/faucet/claim", { wallet_address: payer.wallet_address, agent_name: "bench" }, payer.api_key)
    if (claim.status !== 200) throw new Error(`setup: ${JSON.stringify(claim)}`)
    const body = { payer_wallet: payer.wallet_address, prompt: "Summarise the escrow settlement for region iad, please." }
    // The price and payee, as a client learns them: from the 402 challenge.
    const challenge = await json(pool, "POST", "/inference", body)
    if (challenge.status !== 402 || challenge.body.error !== "payment_required" || challenge.body.payee_wallet !== orchestrator) {
      throw new Error(`expected a 402 challenge naming ${orchestrator}: ${JSON.stringify(challenge)}`)
    }
    const token = { payee_wallet: challenge.body.payee_wallet as string, max_amount_usdc: challenge.body.price_usdc as string }

    console.log(`service: ${command.argv.slice(1).join(" ")} (${command.kind}); ${concurrency} connections; ${seconds} s after ${WARMUP_MS / 1000} s warm-up; load average ${loadAverage()}`)
    const health = await drive(async () => (await json(pool, "GET", "/health")).status, child.pid)
    const mintMs: Array<number> = []
    const inferenceMs: Array<number> = []
    const inference = await drive(async (measured) => {
      const t0 = performance.now()
      const minted = await json(pool, "POST", "/api/payment-tokens", token, payer.api_key)
      if (minted.status !== 201) return minted.status
      const t1 = performance.now()
      const status = (await json(pool, "POST", "/inference", body, undefined, `Payment ${minted.body.payment_token}`)).status
      if (measured) {
        mintMs.push(t1 - t0)
        inferenceMs.push(performance.now() - t1)
      }
      return status
    }, child.pid)
    const wallet = await json(pool, "GET", `/api/wallets/${payer.wallet_address}`, undefined, payer.api_key)
    await pool.close()

    const row = (label: string, r: Result) =>
      console.log(`${label.padEnd(28)} ${r.perSecond.toFixed(0).padStart(6)} req/s   p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms   CPU ${r.cpuUsPerRequest.toFixed(0).padStart(5)} µs/req   (${r.requests} requests, ${r.errors} not 200)`)
    row("GET /health (baseline)", health)
    row("paid: mint + POST /inference", inference)
    const step = (label: string, ms: Array<number>) => {
      ms.sort((a, b) => a - b)
      console.log(`  ${label.padEnd(26)} p50 ${percentile(ms, 50).toFixed(1).padStart(6)} ms   p99 ${percentile(ms, 99).toFixed(1).padStart(6)} ms`)
    }
    step("of which the token mint", mintMs)
    step("of which the inference", inferenceMs)
    console.log(`price ${token.max_amount_usdc} USDC per request, paid to ${token.payee_wallet}`)
    console.log(`payer after the run: available ${wallet.body.balance_usdc}, locked ${wallet.body.locked_usdc} USDC`)
    console.log(`target: ≥ 1,500 paid req/s (each a mint and an inference), p99 < 100 ms; load average now ${loadAverage()}`)
  } finally {
    await stop(child)
  }
}

const main = async () => {
  if (bundles.length === 0) return measure(serviceCommand())
  for (const bundle of bundles) await measure({ argv: [process.execPath, bundle], kind: "bundle" })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
