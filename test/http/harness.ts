/**
 * A real settlement server on an ephemeral loopback port, and a plain `fetch`
 * client for it (the dialect as a Python or Go agent sees it: JSON in, JSON out).
 *
 * The server is built inside the calling test's Effect, so under `it.effect` /
 * `it.scoped` it runs on the TestClock (rotation grace and escrow deadlines move
 * with `TestClock.adjust`), and under `it.live` on the real clock.
 */
import { Effect, Layer, type Scope } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import * as fs from "node:fs"
import type { WalletAddress } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import * as Server from "../../src/http/server.js"
import type { SettlementConfigShape } from "../../src/settlement/SettlementConfig.js"
import { Ledger, type LedgerConfigShape, type LedgerShape } from "../../src/ledger/Ledger.js"

export interface Harness {
  readonly base: string
  /** The server's own ledger: funding wallets and reading balances around requests. */
  readonly ledger: LedgerShape
  readonly http: Http
}

export interface Options {
  readonly settlement?: Partial<SettlementConfigShape>
  readonly ledger?: Partial<LedgerConfigShape>
  /** The SQLite ledger and key store in a fresh temp dir instead of memory. */
  readonly sqlite?: boolean
}

const testSettings = (options: Options) => ({ port: 0, host: "127.0.0.1", ...options.settlement })

export const serverLayer = (options: Options = {}) => {
  if (options.sqlite !== true) return Server.layerMemory({ settlement: testSettings(options), ledger: options.ledger ?? {} })
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-http-"))
  return Server.layerSqlite({ dataDir, synchronous: "NORMAL", settlement: testSettings(options), ledger: options.ledger ?? {} })
}

/** Starts a server for the current scope. */
export const serve = (options: Options = {}): Effect.Effect<Harness, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(serverLayer(options))
    const base = yield* Effect.provide(Server.baseUrl, context)
    const ledger = yield* Effect.provide(Ledger, context)
    return { base, ledger, http: http(base) }
  })

export interface Reply {
  readonly status: number
  readonly body: any
  readonly headers: Headers
}

export interface RequestOptions {
  readonly body?: unknown
  /** Sent as-is (bad JSON, huge bodies). */
  readonly raw?: string
  readonly key?: string
  readonly headers?: Record<string, string>
}

export type Http = (method: string, path: string, options?: RequestOptions) => Effect.Effect<Reply>

export const http = (base: string): Http => (method, path, options = {}) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    let body: string | undefined
    if (options.raw !== undefined) body = options.raw
    else if (options.body !== undefined) body = JSON.stringify(options.body)
    if (body !== undefined) headers["content-type"] ??= "application/json"
    if (options.key !== undefined) headers["authorization"] = `Bearer ${options.key}`
    const response = await fetch(base + path, body === undefined ? { method, headers } : { method, headers, body })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? null : JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed, headers: response.headers }
  })

export interface TestAgent {
  readonly agentId: string
  readonly wallet: WalletAddress
  readonly key: string
  readonly referralCode: string
}

/** Registers over HTTP (201 expected) and funds the wallet through the ledger. */
export const agent = (h: Harness, name: string, fund = "0", extra: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const reply = yield* h.http("POST", "/api/agents", { body: { agent_name: name, ...extra } })
    if (reply.status !== 201) throw new Error(`register ${name}: ${reply.status} ${JSON.stringify(reply.body)}`)
    const wallet = reply.body.wallet_address as WalletAddress
    if (Usdc.make(fund) > 0n) yield* h.ledger.deposit(wallet, Usdc.make(fund))
    return { agentId: reply.body.agent_id, wallet, key: reply.body.api_key, referralCode: reply.body.referral_code } satisfies TestAgent
  })

/** Every balance that could move: the wallets given, every system account, posting and escrow counts. */
export const snapshot = (h: Harness, wallets: ReadonlyArray<WalletAddress>) =>
  Effect.gen(function*() {
    const out: Record<string, string> = {}
    for (const wallet of wallets) {
      const b = yield* h.ledger.balance(wallet)
      out[`${wallet}.available`] = Usdc.format(b.available)
      out[`${wallet}.locked`] = Usdc.format(b.locked)
    }
    for (const account of Object.values(SystemAccount)) out[account] = Usdc.format(yield* h.ledger.systemBalance(account))
    const report = yield* h.ledger.verify
    out["postings"] = String(report.postings)
    out["escrows"] = String(report.escrows)
    return out
  })

export const available = (h: Harness, wallet: WalletAddress) =>
  Effect.map(h.ledger.balance(wallet), (b) => Usdc.format(b.available))
