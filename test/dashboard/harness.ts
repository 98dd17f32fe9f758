/**
 * The settlement API and the dashboard on one real server: an ephemeral loopback
 * port, the SQLite ledger and key store in a fresh temp dir, an operator key.
 * `scenario` fills it through the REST API with escrows in two regions and a
 * referral tree, and returns what the tests check against.
 */
import { type Clock, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { ApiKeys } from "../../src/settlement/ApiKeys.js"
import { PaymentTokens } from "../../src/settlement/PaymentTokens.js"
import * as DashboardSettings from "../../src/http/dashboard/DashboardConfig.js"
import type { DashboardConfigShape } from "../../src/http/dashboard/DashboardConfig.js"
import * as DashboardHttp from "../../src/http/dashboard/http.js"
import * as Server from "../../src/http/server.js"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import { Ledger, type LedgerShape } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"

export interface Running {
  readonly base: string
  readonly ledger: LedgerShape
  readonly operatorKey: string
  readonly dataDir: string
  readonly close: () => Promise<void>
}

/**
 * Starts the server outside any test fiber (browser tests drive it with promises).
 * `clock` replaces the clock of the whole server (the screenshot script spreads its
 * history over a day).
 */
export const start = async (dashboard: Partial<DashboardConfigShape> = {}, clock?: Clock.Clock): Promise<Running> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-dashboard-"))
  const operatorKey = randomBytes(32).toString("hex")
  const layer = DashboardHttp.layerWithSettlement.pipe(
    Layer.provideMerge(Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql())),
    Layer.provideMerge(SqlLedger.layerSqlite({ dataDir, synchronous: "NORMAL" })),
    Layer.provideMerge(LedgerConfig.layer({ region: "local" })),
    Layer.provideMerge(SettlementSettings.layer({ port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(
      DashboardSettings.layer({
        operatorApiKey: Option.some(Redacted.make(operatorKey)),
        liveIntervalMs: 200,
        pollIntervalMs: 500,
        operatorRefreshMs: 300,
        ...dashboard
      })
    ),
    Layer.provide(clock === undefined ? Layer.empty : Layer.setClock(clock))
  )
  const scope = await Effect.runPromise(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const base = await Effect.runPromise(Effect.provide(Server.baseUrl, context))
  const ledger = await Effect.runPromise(Effect.provide(Ledger, context))
  return {
    base,
    ledger,
    operatorKey,
    dataDir,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

export interface Reply {
  readonly status: number
  readonly body: any
}

export const call = async (base: string, method: string, route: string, key?: string, body?: unknown): Promise<Reply> => {
  const headers: Record<string, string> = {}
  if (key !== undefined) headers["authorization"] = `Bearer ${key}`
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(base + route, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = text === "" ? null : JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed }
}

const expectStatus = (reply: Reply, status: number, what: string) => {
  if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body
}

export interface Agent {
  readonly name: string
  readonly agentId: string
  readonly wallet: WalletAddress
  readonly key: string
  readonly referralCode: string
}

export const register = async (r: Running, name: string, fundUsdc = "0", referralCode?: string): Promise<Agent> => {
  const body = expectStatus(
    await call(r.base, "POST", "/api/agents", undefined, { agent_name: name, ...(referralCode ? { referral_code: referralCode } : {}) }),
    201,
    `register ${name}`
  )
  const wallet = body.wallet_address as WalletAddress
  if (Usdc.make(fundUsdc) > 0n) await Effect.runPromise(r.ledger.deposit(wallet, Usdc.make(fundUsdc)))
  return { name, agentId: body.agent_id, wallet, key: body.api_key, referralCode: body.referral_code }
}

export const createEscrow = async (
  r: Running,
  payer: Agent,
  payee: Agent,
  amountUsdc: string,
  region: string,
  description = "task"
): Promise<EscrowId> => {
  const body = expectStatus(
    await call(r.base, "POST", "/api/escrow/create", payer.key, {
      payer_wallet: payer.wallet,
      payee_wallet: payee.wallet,
      amount_usdc: amountUsdc,
      description,
      metadata: { fly_region: region, ts: 1_732_000_000.25 }
    }),
    201,
    `create ${payer.name} → ${payee.name}`
  )
  return body.escrow_id as EscrowId
}

export const release = async (r: Running, payer: Agent, id: EscrowId, amountUsdc?: string) =>
  expectStatus(
    await call(r.base, "POST", "/api/escrow/release", payer.key, { escrow_id: id, ...(amountUsdc ? { amount_usdc: amountUsdc } : {}) }),
    200,
    `release ${id}`
  )

export const cancel = async (r: Running, payee: Agent, id: EscrowId) =>
  expectStatus(await call(r.base, "POST", "/api/escrow/cancel", payee.key, { escrow_id: id }), 200, `cancel ${id}`)

export interface Scenario {
  readonly root: Agent
  readonly alice: Agent
  readonly bob: Agent
  readonly carol: Agent
  /** Unreferred, with a name that would run script if it were parsed as HTML. */
  readonly mallory: Agent
  readonly all: ReadonlyArray<Agent>
  /** mallory → alice, released in two parts. */
  readonly partial: EscrowId
  /** root → bob, released: mallory is no party to it. */
  readonly rootToBob: EscrowId
}

export const MALLORY_NAME = `<img src=x onerror="window.__pwned=1">mallory`

/**
 * root referred alice and bob; alice referred carol; mallory is on her own.
 * Escrows in iad and lhr: released, partly released, cancelled and pending, plus
 * `bulk` small released ones so the audit trail has more than one page.
 */
export const scenario = async (r: Running, bulk = 24): Promise<Scenario> => {
  const root = await register(r, "orchestrator", "5000")
  const alice = await register(r, "alice", "800", root.referralCode)
  const bob = await register(r, "bob", "300", root.referralCode)
  const carol = await register(r, "carol", "50", alice.referralCode)
  const mallory = await register(r, MALLORY_NAME, "100")

  const a = await createEscrow(r, root, alice, "100.25", "iad", "summarise the quarterly filings")
  await release(r, root, a)
  const rootToBob = await createEscrow(r, root, bob, "40.5", "lhr", "translate the contract")
  await release(r, root, rootToBob)
  const c = await createEscrow(r, alice, carol, "12.345678", "lhr", "label 500 images")
  await release(r, alice, c)
  const partial = await createEscrow(r, mallory, alice, "7.000001", "iad", "two-part job")
  await release(r, mallory, partial, "3")
  await release(r, mallory, partial)
  const cancelled = await createEscrow(r, bob, mallory, "5", "iad", "abandoned")
  await cancel(r, mallory, cancelled)
  await createEscrow(r, root, carol, "9.99", "iad", "still running")
  await createEscrow(r, alice, bob, "1.5", "lhr", "still running")
  for (let i = 0; i < bulk; i++) {
    const id = await createEscrow(r, root, bob, `0.${String(100 + i * 7).padStart(6, "0")}`, i % 2 === 0 ? "iad" : "lhr", `batch ${i}`)
    await release(r, root, id)
  }
  return { root, alice, bob, carol, mallory, all: [root, alice, bob, carol, mallory], partial, rootToBob }
}

/** Σ `Ledger.activity` over wallets, per region, as 6-place strings: what the dashboard must show. */
export const ledgerRegions = async (r: Running, wallets: ReadonlyArray<WalletAddress>) => {
  const out: Record<string, { revenue: bigint; spent: bigint; fees: bigint; referral: bigint }> = {}
  for (const wallet of wallets) {
    const activity = await Effect.runPromise(r.ledger.activity(wallet))
    for (const [region, t] of Object.entries(activity.byRegion)) {
      const row = (out[region] ??= { revenue: 0n, spent: 0n, fees: 0n, referral: 0n })
      row.revenue += t.revenue
      row.spent += t.spent
      row.fees += t.feesPaid
      row.referral += t.referralIncome
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([region, t]) => [
      region,
      { revenue: Usdc.format(t.revenue), spent: Usdc.format(t.spent), fees: Usdc.format(t.fees), referral: Usdc.format(t.referral) }
    ])
  )
}
