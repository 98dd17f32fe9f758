/**
 * The service as a real child process: start-up refusal on bad configuration (one
 * line), graceful shutdown on SIGTERM with paid work in flight, and recovery after
 * SIGKILL mid-request. Balances are read from the process's own SQLite ledger
 * after it has exited or been killed.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as path from "node:path"
import { Effect, ManagedRuntime } from "effect"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { journalFilename } from "../../src/service/Journal.js"
import {
  type Child,
  eventually,
  freePort,
  metricValue,
  paidRequest,
  payerWithMandate,
  repoRoot,
  request,
  spawnService,
  tempDir,
  waitExit,
  waitHealthy
} from "./support.js"

const fixture = path.join(repoRoot, "test/service/fixtures/slow-service.ts")
const children: Array<Child> = []
afterAll(() => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill("SIGKILL")
})

/** The ledger a (stopped) service left in `dataDir`, opened in this process. */
const withLedger = async <A>(dataDir: string, f: (ledger: Ledger["Type"]) => Effect.Effect<A, unknown>) => {
  const runtime = ManagedRuntime.make(SqlLedger.layerSqliteWith({ dataDir }))
  try {
    return await runtime.runPromise(Effect.flatMap(Ledger, f))
  } finally {
    await runtime.dispose()
  }
}

const start = async (dataDir: string, extraEnv: Record<string, string> = {}) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const child = spawnService({
    entry: fixture,
    env: { PORT: String(port), HOST: "127.0.0.1", METRICS_PORT: String(metricsPort), DATA_DIR: dataDir, FLY_REGION: "lhr", LOG_FORMAT: "json", ...extraEnv }
  })
  children.push(child)
  const base = `http://127.0.0.1:${port}`
  await waitHealthy(base, 90_000).catch((error) => {
    throw new Error(`${String(error)}\n${child.output()}`)
  })
  return { child, base, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` }
}

describe("start-up configuration errors", () => {
  it("a bad or missing value stops start-up with one line naming the variable", async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ESCROW_FEE: "abc" }, /ESCROW_FEE/],
      [{ PORT: "99999" }, /PORT/],
      [{ ESCROW_BASE: "http://settlement.internal:8080" }, /PF_API_KEY/],
      [{ ESCROW_BASE: "not a url" }, /ESCROW_BASE: expected an http\(s\) URL/]
    ]
    const results = await Promise.all(
      cases.map(async ([env]) => {
        const child = spawnService({ env: { DATA_DIR: tempDir(), METRICS_PORT: "0", ...env } })
        children.push(child)
        const exit = await waitExit(child, 90_000)
        return { exit, stderr: child.stderr(), output: child.output() }
      })
    )
    results.forEach(({ exit, stderr, output }, i) => {
      const lines = stderr.split("\n").filter((l) => l.trim().length > 0)
      expect(exit.code, output).toBe(2)
      expect(lines, output).toHaveLength(1)
      expect(lines[0]).toMatch(/^ringmaster: configuration error: /)
      expect(lines[0]).toMatch(cases[i]![1])
      // Nothing else was started: no secret, no stack trace.
      expect(output).not.toMatch(/at .*\.ts:\d+/)
    })
  }, 120_000)
})

describe("graceful shutdown", () => {
  it("SIGTERM: new requests are refused, in-flight work finishes within the bound, the rest is cancelled, exit 0", async () => {
    const dataDir = tempDir()
    const { child, base } = await start(dataDir, { SHUTDOWN_TIMEOUT: "3 seconds" })
    const orchestrator = (await request(base, "GET", "/info")).body.wallet_address as WalletAddress
    const payer = await payerWithMandate(base, orchestrator)

    // Two paid requests in flight: one finishes inside the 3 s bound, one cannot.
    const quick = paidRequest(base, base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "slow:1500" })
    const stuck = paidRequest(base, base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "slow:60000" })
    // Both escrows are open (0.001 each locked) before the signal.
    await eventually(async () => {
      const w = await request(base, "GET", `/api/wallets/${payer.wallet}`, { key: payer.key })
      return w.body.locked_usdc === "0.002000" ? true : undefined
    })
    child.process.kill("SIGTERM")
    const refused = await eventually(async () => {
      const reply = await request(base, "GET", "/info")
      return reply.status === 503 ? reply : undefined
    }, 3_000, 20).catch(() => undefined)

    const [quickReply, stuckReply] = await Promise.all([quick, stuck])
    const exit = await waitExit(child, 30_000)
    expect(exit, child.output()).toEqual({ code: 0, signal: null })
    expect(quickReply.status).toBe(200)
    expect(stuckReply.status).toBe(503)
    expect(stuckReply.body.error).toBe("shutting_down")
    if (refused !== undefined) expect(refused.body.error).toBe("shutting_down")

    // Every escrow it opened ended released or cancelled: the payer paid for the one result it got.
    await withLedger(dataDir, (ledger) =>
      Effect.gen(function*() {
        expect(yield* ledger.balance(payer.wallet)).toMatchObject({ available: 999_000n, locked: 0n })
        const page = yield* ledger.listEscrows({ wallet: payer.wallet })
        expect(page.escrows.map((e) => e.status).sort()).toEqual(["cancelled", "released"])
      }))
    const open = new Database(journalFilename(dataDir), { readonly: true })
      .prepare("SELECT COUNT(*) AS n FROM service_escrows WHERE status = 'open'")
      .get() as { n: number }
    expect(open.n).toBe(0)
    expect(child.output()).toContain("shutdown timeout reached")
  }, 180_000)
})

describe("crash recovery", () => {
  it("after SIGKILL mid-request the next start cancels the escrow the dead process left pending", async () => {
    const dataDir = tempDir()
    const first = await start(dataDir)
    const orchestrator = (await request(first.base, "GET", "/info")).body.wallet_address as WalletAddress
    const payer = await payerWithMandate(first.base, orchestrator)
    const prompt = "slow:25000" + " ".repeat(190) // 200 characters: 0.002 USDC
    const inFlight = paidRequest(first.base, first.base, payer, "/inference", { payer_wallet: payer.wallet, prompt }).catch((e) => e)
    await eventually(async () => {
      const w = await request(first.base, "GET", `/api/wallets/${payer.wallet}`, { key: payer.key })
      return w.body.locked_usdc === "0.002000" ? true : undefined
    })
    first.child.process.kill("SIGKILL")
    expect((await waitExit(first.child)).signal).toBe("SIGKILL")
    expect(await inFlight).toBeInstanceOf(Error) // the connection died with the process

    // Left behind: a pending escrow with funds locked, and an open journal row.
    const escrowId = await withLedger(dataDir, (ledger) =>
      Effect.gen(function*() {
        expect(yield* ledger.balance(payer.wallet)).toMatchObject({ available: 998_000n, locked: 2_000n })
        const page = yield* ledger.listEscrows({ wallet: payer.wallet, status: "pending" })
        expect(page.escrows).toHaveLength(1)
        return page.escrows[0]!.id as EscrowId
      }))
    const row = () =>
      new Database(journalFilename(dataDir), { readonly: true })
        .prepare("SELECT status FROM service_escrows WHERE payer = ?")
        .get(payer.wallet) as { status: string }
    expect(row().status).toBe("open")

    // The next start reconciles before it opens the port.
    const second = await start(dataDir)
    expect((await request(second.base, "GET", "/info")).body.wallet_address).toBe(orchestrator)
    const w = await request(second.base, "GET", `/api/wallets/${payer.wallet}`, { key: payer.key })
    expect(w.body).toMatchObject({ balance_usdc: "1.000000", locked_usdc: "0.000000" })
    expect(row().status).toBe("cancelled")
    const metrics = await (await fetch(second.metricsUrl)).text()
    expect(metricValue(metrics, "ringmaster_recovered_escrows_total", { region: "lhr" })).toBe(1)
    expect(second.child.output()).toContain(escrowId)

    second.child.process.kill("SIGTERM")
    expect((await waitExit(second.child)).code).toBe(0)
    await withLedger(dataDir, (ledger) =>
      Effect.gen(function*() {
        const escrow = yield* ledger.getEscrow(escrowId)
        expect(escrow.status).toBe("cancelled")
        expect(escrow.refunded).toBe(2_000n)
        const report = yield* ledger.verify
        expect(report.violations).toEqual([])
      }))
  }, 240_000)
})
