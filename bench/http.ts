/**
 * `npm run bench:http`: escrow lifecycles (create + release) per second through the
 * settlement service over loopback HTTP, beside a bare `node:http` server answering
 * the same JSON from the same run (the ceiling of the transport on this machine).
 *
 * Three processes: this one drives the load (undici `Pool`, keep-alive, one
 * connection per concurrent client); the settlement service (`ringmaster
 * settlement`'s composition: REST + MCP routes, SQLite ledger in a temp dir with
 * durable commits, synchronous=FULL) and the bare server each run in a child process.
 * Every client is its own agent pair (payer + payee, registered over HTTP, the payer
 * funded through the ledger), so the per-agent rate limiter, API-key lookup and
 * group commit all do their real work.
 *
 * Options:
 *   --seconds N        per measurement (default 5)
 *   --warmup N         operations before measuring (default 5,000; at most 60 s)
 *   --concurrency a,b  client counts for the settlement service (default 1,64)
 *   --ledger KIND      sqlite (default: synchronous=FULL, every commit fsynced),
 *                      sqlite-normal (synchronous=NORMAL) or memory: the same service
 *                      on a ledger without a disk, to see the HTTP layer's own cost
 *   --profile DIR      CPU-profile the settlement process (V8's sampling profiler, the
 *                      one behind `node --cpu-prof`) during the measured window of the
 *                      largest client count only, and write `settlement-<c>.cpuprofile`
 *                      to DIR; summarise it with `tsx bench/profile.ts FILE`
 *   --skip-bare        do not measure the bare node:http ceiling
 */
import { Effect, Layer } from "effect"
import { fork, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Pool } from "undici"

const argv = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const role = option("role") ?? "driver"
const seconds = Number(option("seconds") ?? 5)
const warmupSeconds = 2
/**
 * Effect's runtime needs many requests before V8 has optimised its hot paths: at a
 * few hundred requests it costs several times what it does warm. So the warm-up
 * is counted in operations (lifecycles, or requests for the bare server), not only
 * in seconds, and bounded in time for a very slow machine.
 */
const WARMUP_OPERATIONS = Number(option("warmup") ?? 5_000)
const MAX_WARMUP_SECONDS = 60
const concurrencies = (option("concurrency") ?? "1,64").split(",").map(Number)
const profileDir = option("profile")
const skipBare = argv.includes("--skip-bare")
const ledgerKind = option("ledger") ?? "sqlite"

/** Connections and in-flight requests are bounded by the largest client count. */
const MAX_CONCURRENCY = 512
/** The escrow each lifecycle opens and releases. */
const AMOUNT_USDC = "0.01"
const FUND_USDC = "100000"

// ---------------------------------------------------------------------------
// Children: the settlement service and the bare server
// ---------------------------------------------------------------------------

type ToChild =
  | { readonly fund: ReadonlyArray<string>; readonly amount: string; readonly id: number }
  /** The measured window: CPU time is taken around it, and the profiler runs in it when asked. */
  | { readonly window: "start"; readonly profile: boolean }
  | { readonly window: "stop"; readonly profileFile?: string | undefined }
  | { readonly stop: true }
type FromChild =
  | { readonly ready: number }
  | { readonly funded: number }
  | { readonly windowed: number }
  | { readonly verified: string }

const send = (message: FromChild) => process.send!(message)

/**
 * The measured window in a server process: its CPU time (user + system, which the
 * other processes on a busy machine do not inflate the way they inflate wall time),
 * and optionally V8's sampling profiler (the one behind `node --cpu-prof`) over the
 * window only, not start-up.
 */
const windowHandler = () => {
  let session: import("node:inspector").Session | undefined
  let cpuAtStart = process.cpuUsage()
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session!.post(method, params, (error, result) => (error ? reject(error) : resolve(result))))
  return async (message: Extract<ToChild, { window: unknown }>): Promise<number> => {
    if (message.window === "start") {
      if (message.profile) {
        const inspector = await import("node:inspector")
        session = new inspector.Session()
        session.connect()
        await post("Profiler.enable")
        await post("Profiler.setSamplingInterval", { interval: 500 })
        await post("Profiler.start")
      }
      cpuAtStart = process.cpuUsage()
      return 0
    }
    const cpu = process.cpuUsage(cpuAtStart)
    if (session !== undefined && message.profileFile !== undefined) {
      const { profile } = await post("Profiler.stop")
      fs.mkdirSync(path.dirname(message.profileFile), { recursive: true })
      fs.writeFileSync(message.profileFile, JSON.stringify(profile))
      session.disconnect()
      session = undefined
    }
    return cpu.user + cpu.system
  }
}

const settlementChild = async () => {
  const Services = await import("../src/cli/services.js")
  const Server = await import("../src/http/server.js")
  const { ApiKeys } = await import("../src/settlement/ApiKeys.js")
  const { PaymentTokens } = await import("../src/settlement/PaymentTokens.js")
  const SettlementSettings = await import("../src/settlement/SettlementConfig.js")
  const LedgerSettings = await import("../src/ledger/LedgerConfig.js")
  const MemoryLedger = await import("../src/ledger/MemoryLedger.js")
  const SqlLedger = await import("../src/ledger/SqlLedger.js")
  const { Ledger } = await import("../src/ledger/Ledger.js")
  const Usdc = await import("../src/domain/Usdc.js")
  const { SqliteClient } = await import("@effect/sql-sqlite-node")
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-http-"))
  const onWindow = windowHandler()

  // `sqliteStores` is what `ringmaster settlement` runs on (synchronous=FULL).
  // The dashboard's routes read the ledger's `SqlClient`; with the in-memory ledger
  // they get an empty in-memory SQLite database (the bench never calls them).
  const stores = ledgerKind === "memory"
    ? Layer.mergeAll(ApiKeys.layerMemory, PaymentTokens.layerMemory(), MemoryLedger.layer, Layer.orDie(SqliteClient.layer({ filename: ":memory:" })))
    : ledgerKind === "sqlite-normal"
    ? Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql()).pipe(Layer.provideMerge(SqlLedger.layerSqlite({ dataDir, synchronous: "NORMAL" })))
    : Services.sqliteStores(dataDir)
  // The production composition (`ringmaster settlement`), on an ephemeral loopback port.
  // Registration is limited per client address; the bench registers all its agents from
  // one address, so that limit is raised. The per-agent limit stays at its default.
  const service = Services.settlementHttp.pipe(
    Layer.provideMerge(stores),
    Layer.provide(LedgerSettings.layer({})),
    Layer.provide(SettlementSettings.layer({ port: 0, host: "127.0.0.1", registrationsPerMinute: 100_000 }))
  )

  const main = Effect.gen(function*() {
    const ledger = yield* Ledger
    const base = yield* Server.baseUrl
    send({ ready: Number(new URL(base).port) })
    yield* Effect.async<void>((resume) => {
      process.on("message", (message: ToChild) => {
        if ("stop" in message) {
          Effect.runPromise(ledger.verify).then((report) => {
            send({ verified: `${report.escrows} escrows, ${report.postings} postings, ${report.violations.length} invariant violations` })
            fs.rmSync(dataDir, { recursive: true, force: true })
            resume(Effect.void)
          })
        } else if ("window" in message) {
          onWindow(message).then((cpuUs) => send({ windowed: cpuUs }))
        } else {
          Effect.runPromise(
            Effect.forEach(message.fund, (wallet) => ledger.deposit(wallet as any, Usdc.make(message.amount)), { discard: true })
          ).then(() => send({ funded: message.id }))
        }
      })
    })
  })
  await Effect.runPromise(Effect.scoped(Effect.provide(main, Layer.orDie(service))) as Effect.Effect<void>)
  process.exit(0)
}

/** What the bare server answers: a created escrow as the settlement service writes it. */
const cannedEscrow = JSON.stringify({
  escrow_id: "esc_01JABCDEFGHJKMNPQRSTVWXYZ0",
  status: "pending",
  payer_wallet: "0x" + "a".repeat(40),
  payee_wallet: "0x" + "b".repeat(40),
  amount_usdc: "0.010000",
  fee_usdc: "0.000100",
  net_usdc: "0.009900",
  released_usdc: "0.000000",
  fee_paid_usdc: "0.000000",
  refunded_usdc: "0.000000",
  remaining_usdc: "0.010000",
  description: "bench",
  metadata: {},
  region: "local",
  idempotency_key: null,
  mandate_id: null,
  created_at: "2025-01-01T12:00:00.000Z",
  expires_at: "2025-01-01T12:15:00.000Z",
  settled_at: null,
  version: 1
})

/** Reads the body, parses it, answers the canned JSON: the least any JSON API does. */
const bareChild = () => {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        response.writeHead(400).end()
        return
      }
      response.writeHead(201, { "content-type": "application/json" }).end(cannedEscrow)
    })
  })
  server.listen(0, "127.0.0.1", () => send({ ready: (server.address() as { port: number }).port }))
  const onWindow = windowHandler()
  process.on("message", (message: ToChild) => {
    if ("stop" in message) server.close(() => process.exit(0))
    else if ("window" in message) onWindow(message).then((cpuUs) => send({ windowed: cpuUs }))
  })
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

interface Child {
  readonly process: ChildProcess
  readonly port: number
  readonly request: (message: ToChild) => Promise<FromChild>
}

const spawnChild = (childRole: string): Promise<Child> =>
  new Promise((resolve, reject) => {
    // No execArgv: the child inherits this process's (tsx's loader under tsx, none when compiled by bench/compiled.ts).
    const child = fork(fileURLToPath(import.meta.url), ["--role", childRole, "--ledger", ledgerKind], {
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const timer = setTimeout(() => reject(new Error(`${childRole} did not start within 30 s`)), 30_000)
    child.once("exit", (code) => reject(new Error(`${childRole} exited with ${code} before it was ready`)))
    child.once("message", (message: FromChild) => {
      clearTimeout(timer)
      if (!("ready" in message)) return reject(new Error(`unexpected first message from ${childRole}`))
      child.removeAllListeners("exit")
      const request = (out: ToChild) =>
        new Promise<FromChild>((done) => {
          child.once("message", done)
          child.send(out)
        })
      resolve({ process: child, port: message.ready, request })
    })
  })

const stopChild = (child: Child) =>
  new Promise<string | undefined>((resolve) => {
    let verified: string | undefined
    child.process.on("message", (m: FromChild) => {
      if ("verified" in m) verified = m.verified
    })
    child.process.once("exit", () => resolve(verified))
    child.process.send({ stop: true })
    setTimeout(() => child.process.kill("SIGKILL"), 30_000).unref()
  })

interface Reply {
  readonly status: number
  readonly body: any
}

const call = async (pool: Pool, method: "GET" | "POST", pathname: string, body?: unknown, key?: string): Promise<Reply> => {
  const headers: Record<string, string> = { "content-type": "application/json" }
  if (key !== undefined) headers["authorization"] = `Bearer ${key}`
  const response = await pool.request(
    body === undefined ? { method, path: pathname, headers } : { method, path: pathname, headers, body: JSON.stringify(body) }
  )
  const text = await response.body.text()
  return { status: response.statusCode, body: text === "" ? null : JSON.parse(text) }
}

interface Figures {
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly count: number
  readonly errors: number
  readonly firstError: string | undefined
}

/**
 * Runs `op` in `concurrency` loops for `seconds` (and, when given, until `operations`
 * have completed, but never past `MAX_WARMUP_SECONDS`); rate and latency percentiles.
 */
const measure = async (
  concurrency: number,
  budget: { readonly seconds: number; readonly operations?: number },
  op: (worker: number) => Promise<string | undefined>
): Promise<Figures> => {
  const latencies: Array<number> = []
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const deadline = start + budget.seconds * 1000
  const hardDeadline = start + Math.max(budget.seconds, MAX_WARMUP_SECONDS) * 1000
  const more = () => {
    const now = performance.now()
    if (now >= hardDeadline) return false
    return now < deadline || (budget.operations !== undefined && latencies.length + errors < budget.operations)
  }
  // Bounded: each loop stops at the deadline; a stuck request is cut by the pool's timeouts.
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (more()) {
        const t0 = performance.now()
        const error = await op(worker).catch((e: unknown) => `${e instanceof Error ? e.message : String(e)}`)
        if (error === undefined) latencies.push(performance.now() - t0)
        else {
          errors++
          firstError ??= error
        }
      }
    })
  )
  const elapsedS = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0
  return { count: latencies.length, perSecond: latencies.length / elapsedS, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: latencies.at(-1) ?? 0, errors, firstError }
}

const poolFor = (port: number, connections: number) =>
  new Pool(`http://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connectTimeout: 3_000,
    headersTimeout: 10_000,
    bodyTimeout: 10_000
  })

const windowCpu = (reply: FromChild): number => {
  if (!("windowed" in reply)) throw new Error(`unexpected reply ${JSON.stringify(reply)}`)
  return reply.windowed
}

interface BenchAgent {
  readonly key: string
  readonly wallet: string
}

const register = async (pool: Pool, name: string): Promise<BenchAgent> => {
  const reply = await call(pool, "POST", "/api/agents", { agent_name: name })
  if (reply.status !== 201) throw new Error(`register ${name}: ${reply.status} ${JSON.stringify(reply.body)}`)
  return { key: reply.body.api_key, wallet: reply.body.wallet_address }
}

interface Pair {
  readonly payer: BenchAgent
  readonly payee: BenchAgent
  readonly create: string
}

/** One agent pair per client, registered over HTTP; the payers funded through the ledger. */
const setUpSettlement = async (service: Child, clients: number) => {
  const pool = poolFor(service.port, clients)
  const pairs: Array<Pair> = []
  /** What each payee should hold: the sum of `net_usdc` over its released escrows. */
  const netMicros: Array<bigint> = Array.from({ length: clients }, () => 0n)
  for (let i = 0; i < clients; i++) {
    const payer = await register(pool, `bench-payer-${i}`)
    const payee = await register(pool, `bench-payee-${i}`)
    const create = JSON.stringify({ payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: AMOUNT_USDC, description: "bench" })
    pairs.push({ payer, payee, create })
  }
  await service.request({ fund: pairs.map((p) => p.payer.wallet), amount: FUND_USDC, id: clients })

  let requests = 0
  const lifecycle = async (worker: number): Promise<string | undefined> => {
    const pair = pairs[worker]!
    const headers = { "content-type": "application/json", authorization: `Bearer ${pair.payer.key}` }
    const created = await pool.request({ method: "POST", path: "/api/escrow/create", headers, body: pair.create })
    const createdText = await created.body.text()
    requests++
    if (created.statusCode !== 201) return `create ${created.statusCode} ${createdText}`
    const escrowId = JSON.parse(createdText).escrow_id as string
    const released = await pool.request({
      method: "POST",
      path: "/api/escrow/release",
      headers,
      body: JSON.stringify({ escrow_id: escrowId })
    })
    const releasedText = await released.body.text()
    requests++
    if (released.statusCode !== 200) return `release ${released.statusCode} ${releasedText}`
    const record = JSON.parse(releasedText)
    if (record.status !== "released") return `release answered ${releasedText}`
    netMicros[worker] += micros(record.net_usdc)
    return undefined
  }

  const run = async (concurrency: number, profileFile?: string) => {
    await measure(concurrency, { seconds: 1 }, lifecycle)
    requests = 0
    await service.request({ window: "start", profile: profileFile !== undefined })
    const t0 = performance.now()
    const figures = await measure(concurrency, { seconds }, lifecycle)
    const requestsPerSecond = requests / ((performance.now() - t0) / 1000)
    const cpuUs = windowCpu(await service.request({ window: "stop", profileFile }))
    return { ...figures, requestsPerSecond, cpuUsPerRequest: cpuUs / requests }
  }

  const warmUp = () => measure(clients, { seconds: warmupSeconds, operations: WARMUP_OPERATIONS / 2 }, lifecycle)

  /** The money, from the outside: every payee holds exactly the net of what was released to it. */
  const check = async () => {
    const wrong: Array<string> = []
    for (const [i, { payee }] of pairs.entries()) {
      const reply = await call(pool, "GET", `/api/wallets/${payee.wallet}`, undefined, payee.key)
      const expected = netMicros[i]!
      if (reply.status !== 200 || micros(reply.body.balance_usdc) !== expected) {
        wrong.push(`payee ${i}: ${reply.status} ${reply.body?.balance_usdc} != ${expected} micros`)
      }
    }
    return wrong
  }

  return { run, warmUp, check, close: () => pool.close() }
}

const bareRun = async (bare: Child, concurrency: number) => {
  const pool = poolFor(bare.port, concurrency)
  const body = JSON.stringify({ payer_wallet: "0x" + "a".repeat(40), payee_wallet: "0x" + "b".repeat(40), amount_usdc: AMOUNT_USDC, description: "bench" })
  const op = async (): Promise<string | undefined> => {
    const response = await pool.request({ method: "POST", path: "/api/escrow/create", headers: { "content-type": "application/json" }, body })
    const text = await response.body.text()
    if (response.statusCode !== 201) return `bare ${response.statusCode}`
    JSON.parse(text)
    return undefined
  }
  await measure(concurrency, { seconds: warmupSeconds, operations: WARMUP_OPERATIONS }, op)
  await bare.request({ window: "start", profile: false })
  const figures = await measure(concurrency, { seconds }, op)
  const cpuUs = windowCpu(await bare.request({ window: "stop" }))
  await pool.close()
  return { ...figures, cpuUsPerRequest: cpuUs / figures.count }
}

/** "0.009900" → 9900n, exactly (the wire's 6-place decimal). */
const micros = (text: string): bigint => {
  const [whole, fraction = ""] = text.split(".")
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, "0").slice(0, 6))
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

const driver = async () => {
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1 || c > MAX_CONCURRENCY)) {
    throw new Error(`--concurrency: integers 1..${MAX_CONCURRENCY}`)
  }
  if (!(seconds >= 1 && seconds <= 120)) throw new Error("--seconds: 1..120")
  if (!(Number.isInteger(WARMUP_OPERATIONS) && WARMUP_OPERATIONS >= 0 && WARMUP_OPERATIONS <= 1_000_000)) throw new Error("--warmup: 0..1000000")
  const cpu = os.cpus()
  console.log(`bench:http — ${cpu.length} cores (${cpu[0]?.model ?? "unknown CPU"}), node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  console.log(`load generator (undici Pool, keep-alive) and servers are separate processes sharing these ${cpu.length} cores; ${seconds} s per figure, after a warm-up of ${WARMUP_OPERATIONS} operations (at most ${MAX_WARMUP_SECONDS} s)`)
  const ledgerText = ledgerKind === "memory"
    ? "in-memory ledger and API keys (no disk: the HTTP layer's own cost)"
    : `SQLite ledger in a temp dir (WAL, synchronous=${ledgerKind === "sqlite-normal" ? "NORMAL" : "FULL"}: ${ledgerKind === "sqlite-normal" ? "no fsync per commit" : "every commit fsynced"})`
  console.log(`settlement service: REST + MCP routes, ${ledgerText}, per-agent rate limit at its default\n`)

  const rows: Array<Array<string>> = []
  const service = await spawnChild("settlement")
  const clients = Math.max(...concurrencies)
  try {
    const bench = await setUpSettlement(service, clients)
    const warm = await bench.warmUp()
    console.log(`warm-up: ${warm.count} lifecycles at ${clients} connections (${fmt(warm.perSecond)}/s)`)
    for (const concurrency of concurrencies) {
      const profileFile = profileDir !== undefined && concurrency === clients
        ? path.resolve(profileDir, `settlement-${concurrency}.cpuprofile`)
        : undefined
      const r = await bench.run(concurrency, profileFile)
      if (profileFile !== undefined) console.log(`CPU profile of the settlement process (${concurrency} connections): ${profileFile}`)
      rows.push([
        `settlement create+release, ${concurrency} conn`,
        fmt(r.perSecond),
        fmt(r.requestsPerSecond),
        fmt(r.p50Ms, 1),
        fmt(r.p99Ms, 1),
        fmt(r.cpuUsPerRequest),
        r.errors === 0 ? "0" : `${r.errors} (${r.firstError?.slice(0, 120)})`
      ])
    }
    const wrong = await bench.check()
    console.log(wrong.length === 0 ? `balances: every payee holds exactly the net of its releases (${clients} checked over HTTP)` : `BALANCES WRONG: ${wrong.slice(0, 3).join("; ")}`)
    await bench.close()
    if (wrong.length > 0) process.exitCode = 1
  } finally {
    const verified = await stopChild(service)
    console.log(`ledger after the run: ${verified ?? "not verified"}`)
  }
  if (!skipBare) {
    const bare = await spawnChild("bare")
    try {
      for (const concurrency of [1, 64]) {
        const r = await bareRun(bare, concurrency)
        rows.push([`bare node:http JSON POST, ${concurrency} conn`, "", fmt(r.perSecond), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.cpuUsPerRequest), String(r.errors)])
      }
    } finally {
      await stopChild(bare)
    }
  }
  const header = ["", "lifecycles/s", "requests/s", "p50 ms", "p99 ms", "server CPU µs/req", "errors"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  console.log()
  console.log(line(header))
  for (const row of rows) console.log(line(row))
  console.log(`\n(latency: per lifecycle = 2 requests for the settlement rows, per request for the bare rows;`)
  console.log(` server CPU: user + system time of the server process in the measured window / requests answered)`)
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
}

if (!["sqlite", "sqlite-normal", "memory"].includes(ledgerKind)) throw new Error("--ledger: sqlite, sqlite-normal or memory")
if (role === "settlement") await settlementChild()
else if (role === "bare") bareChild()
else await driver()
