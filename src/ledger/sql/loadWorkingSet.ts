/**
 * Loading a batch's working set: every row its commands may read, in one order
 * (idempotency keys, escrows, mandates, accounts, each sorted), locked on
 * PostgreSQL, so concurrent batches serialize without deadlocking.
 */
import { Clock, Effect } from "effect"
import type { AgentRecord } from "../../domain/Escrow.js"
import { SystemAccount } from "../../domain/ids.js"
import { BoundedMap } from "../../domain/BoundedMap.js"
import type { Run } from "../dialect.js"
import { type Command, directKeys, utcDay, WorkingSet } from "../engine.js"
import { slotOf } from "../idempotency.js"
import { big, num, type Row, toAgent, toEscrow, toIdempotencyKey, toMandate } from "../rows.js"
import { padded } from "./statementShapes.js"
import type { LedgerStorage } from "./storage.js"

/** Remembered agent rows at most (TIGER_STYLE: a bound on everything). */
const KNOWN_AGENTS_CAPACITY = 10_000

/** The rows a batch's commands name, gathered before anything is read. */
interface Wanted {
  readonly wallets: Set<string>
  readonly escrowIds: Set<string>
  readonly slots: Map<string, { readonly owner: string; readonly route: string; readonly key: string }>
  readonly mandateIds: Set<string>
  readonly codes: Set<string>
  readonly faucetWallets: Set<string>
  readonly lockedWallets: Set<string>
}

const wantedBy = (commands: ReadonlyArray<Command>): Wanted => {
  const wanted: Wanted = {
    wallets: new Set(),
    escrowIds: new Set(),
    slots: new Map(),
    mandateIds: new Set(),
    codes: new Set(),
    faucetWallets: new Set(),
    lockedWallets: new Set()
  }
  for (const command of commands) {
    const keys = directKeys(command)
    keys.wallets.forEach((w) => wanted.wallets.add(w))
    keys.escrowIds.forEach((id) => wanted.escrowIds.add(id))
    keys.idempotencySlots.forEach((k) => wanted.slots.set(slotOf(k.owner, k.route, k.key), k))
    keys.mandateIds.forEach((id) => wanted.mandateIds.add(id))
    keys.codes.forEach((c) => wanted.codes.add(c))
    if (command._tag === "ClaimFaucet") wanted.faucetWallets.add(command.wallet)
    if (command._tag === "ClaimFaucet" || command._tag === "Deposit") wanted.lockedWallets.add(command.wallet)
  }
  return wanted
}

/** `(commands, run) => WorkingSet`, reading through `run` (the batch's transaction). */
export const make = ({ config, dialect, sql }: LedgerStorage) => {
  /**
   * Agents read from the database, by wallet. An agent row never changes once
   * written, so a row read here stays true; a wallet not found is not remembered
   * (another process may register it). Saves a batch one or two statements, most of
   * its cost when it holds a single command. Bounded: the oldest entry goes first.
   */
  const knownAgents = new BoundedMap<string, AgentRecord>(KNOWN_AGENTS_CAPACITY)

  /**
   * By (owner, key) on the primary key; the cross product of the two IN lists may
   * match slots no command asked about, filtered out here. Locked first: a key's
   * row, then its escrow, then mandates and accounts, in every batch.
   */
  const loadIdempotencyKeys = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.slots.size === 0) return
      const owners = [...new Set([...wanted.slots.values()].map((s) => s.owner))].sort()
      const keys = [...new Set([...wanted.slots.values()].map((s) => s.key))].sort()
      const rows = yield* run(sql<Row>`SELECT * FROM idempotency_keys WHERE ${sql.in("owner", padded(owners))}
        AND ${sql.in("key", padded(keys))} ORDER BY owner, route, key ${dialect.forUpdate}`)
      for (const row of rows) {
        const record = toIdempotencyKey(row)
        const slot = slotOf(record.owner, record.route, record.key)
        if (!wanted.slots.has(slot)) continue
        ws.idempotencyKeys.set(slot, record)
        wanted.escrowIds.add(record.escrowId)
      }
      for (const slot of wanted.slots.keys()) if (!ws.idempotencyKeys.has(slot)) ws.idempotencyKeys.set(slot, null)
    })

  /** The escrows, and through them their parties and mandates. */
  const loadEscrows = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.escrowIds.size === 0) return
      const ids = [...wanted.escrowIds].sort()
      for (const row of yield* run(sql<Row>`SELECT * FROM escrows WHERE ${sql.in("id", padded(ids))} ORDER BY id ${dialect.forUpdate}`)) {
        const escrow = toEscrow(row)
        ws.escrows.set(escrow.id, escrow)
        wanted.wallets.add(escrow.payer)
        wanted.wallets.add(escrow.payee)
        if (escrow.mandateId !== null) wanted.mandateIds.add(escrow.mandateId)
      }
      for (const id of ids) if (!ws.escrows.has(id)) ws.escrows.set(id, null)
    })

  const loadMandates = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.mandateIds.size === 0) return
      const ids = [...wanted.mandateIds].sort()
      for (const row of yield* run(sql<Row>`SELECT * FROM mandates WHERE ${sql.in("id", padded(ids))} ORDER BY id ${dialect.forUpdate}`)) {
        const mandate = toMandate(row)
        ws.mandates.set(mandate.id, mandate)
      }
      for (const id of ids) if (!ws.mandates.has(id)) ws.mandates.set(id, null)
    })

  const loadReferralCodes = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.codes.size === 0) return
      for (const row of yield* run(sql<Row>`SELECT * FROM agents WHERE ${sql.in("referral_code", padded([...wanted.codes]))}`)) {
        const agent = toAgent(row)
        ws.agentsByCode.set(agent.referralCode, agent)
        ws.agents.set(agent.wallet, agent)
      }
      for (const code of wanted.codes) if (!ws.agentsByCode.has(code)) ws.agentsByCode.set(code, null)
    })

  /** Agents, then their referrers as deep as the fee schedule pays (agent rows never change, so no lock); returns the accounts they hold. */
  const loadAgents = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      const tiers = config.fees.referralTiersPpm.length
      let toLoad = [...wanted.wallets].filter((w) => !ws.agents.has(w))
      const accountIds = new Set<string>(wanted.wallets)
      for (let level = 0; level <= tiers && toLoad.length > 0; level++) {
        const unknown = toLoad.filter((w) => !knownAgents.has(w))
        const found = new Map<string, AgentRecord>()
        if (unknown.length > 0) {
          for (const row of yield* run(sql<Row>`SELECT * FROM agents WHERE ${sql.in("wallet", padded(unknown))}`)) {
            const agent = toAgent(row)
            found.set(agent.wallet, agent)
            knownAgents.set(agent.wallet, agent)
          }
        }
        const next: Array<string> = []
        for (const wallet of toLoad) {
          const agent = knownAgents.get(wallet) ?? found.get(wallet) ?? null
          ws.agents.set(wallet, agent)
          if (agent?.referrer) {
            accountIds.add(agent.referrer)
            if (!ws.agents.has(agent.referrer)) next.push(agent.referrer)
          }
        }
        toLoad = level < tiers - 1 ? next : []
      }
      for (const agent of ws.agents.values()) if (agent?.referrer) accountIds.add(agent.referrer)
      return accountIds
    })

  /** Every account the batch may move money on, the system accounts always among them. */
  const loadAccounts = (ws: WorkingSet, accountIds: Set<string>, run: Run) =>
    Effect.gen(function*() {
      for (const system of Object.values(SystemAccount)) accountIds.add(system)
      const sorted = [...accountIds].sort()
      for (const row of yield* dialect.selectAccountsForUpdate(padded(sorted), run)) {
        ws.accounts.set(row.id as string, big(row.balance))
      }
      for (const id of sorted) if (!ws.accounts.has(id)) ws.accounts.set(id, 0n)
    })

  const loadFaucet = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.faucetWallets.size === 0) return
      const claimed = new Set(
        (yield* run(sql<Row>`SELECT wallet FROM faucet_claims WHERE ${sql.in("wallet", padded([...wanted.faucetWallets]))}`))
          .map((r) => r.wallet as string)
      )
      for (const wallet of wanted.faucetWallets) ws.faucetClaimed.set(wallet, claimed.has(wallet))
      const day = utcDay(yield* Clock.currentTimeMillis)
      const rows = yield* run(sql<Row>`SELECT claims FROM faucet_days WHERE day = ${day} ${dialect.forUpdate}`)
      ws.faucetDays.set(day, rows.length > 0 ? num(rows[0]!.claims) : 0)
    })

  /** What deposits and claims report as locked: the wallet's pending escrows. */
  const loadLocked = (ws: WorkingSet, wanted: Wanted, run: Run) =>
    Effect.gen(function*() {
      if (wanted.lockedWallets.size === 0) return
      const rows = yield* run(sql<Row>`SELECT payer, SUM(amount - released - refunded) AS locked FROM escrows
        WHERE status = 'pending' AND ${sql.in("payer", padded([...wanted.lockedWallets]))} GROUP BY payer`)
      for (const wallet of wanted.lockedWallets) ws.locked.set(wallet, 0n)
      for (const row of rows) ws.locked.set(row.payer as string, big(row.locked))
    })

  return (commands: ReadonlyArray<Command>, run: Run) =>
    Effect.gen(function*() {
      const ws = new WorkingSet(false)
      const wanted = wantedBy(commands)
      yield* loadIdempotencyKeys(ws, wanted, run)
      yield* loadEscrows(ws, wanted, run)
      yield* loadMandates(ws, wanted, run)
      yield* loadReferralCodes(ws, wanted, run)
      yield* loadAccounts(ws, yield* loadAgents(ws, wanted, run), run)
      yield* loadFaucet(ws, wanted, run)
      yield* loadLocked(ws, wanted, run)
      return ws
    })
}
