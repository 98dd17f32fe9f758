/**
 * The ledger's rules as a pure state machine: a command, the state it reads and the
 * current time in; a result or a typed refusal out, plus the rows to write.
 *
 * Both ledgers run these functions: the in-memory one over its whole state, the SQL
 * one over a working set it loaded (and, on PostgreSQL, row-locked) inside the
 * batch's transaction. Each command validates everything before it changes
 * anything, so a refused command leaves the working set as it found it; the one
 * exception is a release after the deadline, refused as the escrow expires.
 */
import { randomUUID } from "node:crypto"
import { Duration, type Effect, Either, Option } from "effect"
import {
  AgentNotFound,
  EscrowExpired,
  EscrowNotFound,
  EscrowNotPending,
  FaucetAlreadyClaimed,
  FaucetDailyCapReached,
  FaucetTreasuryEmpty,
  IdempotencyConflict,
  InsufficientFunds,
  InvalidInput,
  type LedgerError,
  type LedgerUnavailable,
  MandateExceeded,
  MandateNotFound,
  ReferralCodeNotFound,
  ReferralCycle,
  ReleaseExceedsRemaining,
  WalletAlreadyRegistered
} from "../domain/errors.js"
import {
  type AgentRecord,
  type EscrowEvent,
  type EscrowRecord,
  type EscrowTerms,
  type MandateRecord,
  type Metadata,
  remaining,
  type WalletBalance
} from "../domain/Escrow.js"
import {
  type AccountId,
  type EscrowId,
  type MandateId,
  newAgentId,
  newEscrowId,
  newMandateId,
  newReferralCode,
  newWalletAddress,
  SystemAccount,
  type WalletAddress
} from "../domain/ids.js"
import { format, MAX_MICROS, type Usdc } from "../domain/Usdc.js"
import { split } from "../domain/FeeSchedule.js"
import { type IdempotencyRecord, IdempotencyLimits, isSha256Hex, scopeOf, slotOf, termsSha256 } from "./idempotency.js"
import type { CreateMandateInput, FaucetClaim, LedgerConfigShape, LedgerShape, RegisterAgentInput } from "./Ledger.js"
import { Limits } from "../domain/limits.js"

export type PostingKind = "deposit" | "faucet" | "lock" | "payout" | "fee" | "referral" | "refund"

/** One leg of a transfer. The legs of a transfer sum to zero. */
export interface Posting {
  readonly transferId: string
  readonly account: AccountId
  readonly amount: bigint
  readonly kind: PostingKind
  readonly escrowId: EscrowId | null
  /** The counterparty wallet, for reports (whose escrow earned this referral share). */
  readonly counterparty: WalletAddress | null
  readonly region: string
  readonly atMs: number
}

export interface FaucetClaimRow {
  readonly wallet: WalletAddress
  readonly agentName: string
  readonly amount: Usdc
  readonly day: string
  readonly atMs: number
}

/** Bounds on untrusted input (TIGER_STYLE: a limit on everything). */
export { Limits }

export type Command =
  | { readonly _tag: "RegisterAgent"; readonly input: RegisterAgentInput }
  | { readonly _tag: "Deposit"; readonly wallet: WalletAddress; readonly amount: Usdc }
  | { readonly _tag: "FundTreasury"; readonly amount: Usdc }
  | { readonly _tag: "ClaimFaucet"; readonly wallet: WalletAddress; readonly agentName: string }
  | { readonly _tag: "CreateEscrow"; readonly terms: EscrowTerms }
  | { readonly _tag: "ReleaseEscrow"; readonly id: EscrowId; readonly amount: Usdc | undefined }
  | { readonly _tag: "CancelEscrow"; readonly id: EscrowId }
  | { readonly _tag: "ExpireEscrow"; readonly id: EscrowId }
  | { readonly _tag: "CreateMandate"; readonly input: CreateMandateInput }
  | { readonly _tag: "RevokeMandate"; readonly id: MandateId; readonly payer: WalletAddress }

/** What each command returns on success. */
export interface CommandResults {
  RegisterAgent: AgentRecord
  Deposit: WalletBalance
  FundTreasury: bigint
  ClaimFaucet: FaucetClaim
  CreateEscrow: EscrowRecord
  ReleaseEscrow: EscrowRecord
  CancelEscrow: EscrowRecord
  ExpireEscrow: EscrowRecord | null
  CreateMandate: MandateRecord
  RevokeMandate: MandateRecord
}
export type ResultOf<C extends Command> = CommandResults[C["_tag"]]

/**
 * The state a batch of commands reads and writes. A key that was never loaded is a
 * bug in the loader, not an absent row, so reading one throws instead of guessing.
 */
export class WorkingSet {
  readonly accounts = new Map<string, bigint>()
  readonly agents = new Map<string, AgentRecord | null>()
  readonly agentsByCode = new Map<string, AgentRecord | null>()
  readonly escrows = new Map<string, EscrowRecord | null>()
  /** Idempotency keys by slot (`slotOf`). */
  readonly idempotencyKeys = new Map<string, IdempotencyRecord | null>()
  readonly mandates = new Map<string, MandateRecord | null>()
  readonly faucetClaimed = new Map<string, boolean>()
  readonly faucetDays = new Map<string, number>()
  /** Locked amount per payer wallet: only needed to report balances after a deposit or claim. */
  readonly locked = new Map<string, bigint>()

  // What this batch changed, to be written by the store.
  readonly dirtyAccounts = new Set<string>()
  readonly newAgents: Array<AgentRecord> = []
  readonly dirtyEscrows = new Set<string>()
  readonly dirtyMandates = new Set<string>()
  readonly newKeys: Array<IdempotencyRecord> = []
  /** Expired keys a new one takes the slot of: their rows go first. */
  readonly replacedKeys: Array<IdempotencyRecord> = []
  readonly postings: Array<Posting> = []
  readonly events: Array<EscrowEvent> = []
  readonly claims: Array<FaucetClaimRow> = []
  readonly dirtyFaucetDays = new Set<string>()

  /** In memory the working set is the whole state: an absent key is an absent row. */
  constructor(readonly complete: boolean) {}

  private read<V>(map: Map<string, V>, key: string, what: string): V | undefined {
    if (map.has(key)) return map.get(key)
    if (this.complete) return undefined
    throw new Error(`ledger engine read ${what} ${key}, which the batch did not load`)
  }

  balanceOf(account: string): bigint {
    return this.read(this.accounts, account, "account") ?? 0n
  }
  agent(wallet: string): AgentRecord | undefined {
    return this.read(this.agents, wallet, "agent") ?? undefined
  }
  agentByCode(code: string): AgentRecord | undefined {
    return this.read(this.agentsByCode, code, "referral code") ?? undefined
  }
  escrow(id: string): EscrowRecord | undefined {
    return this.read(this.escrows, id, "escrow") ?? undefined
  }
  idempotencyKey(slot: string): IdempotencyRecord | undefined {
    return this.read(this.idempotencyKeys, slot, "idempotency key") ?? undefined
  }
  mandate(id: string): MandateRecord | undefined {
    return this.read(this.mandates, id, "mandate") ?? undefined
  }
  hasClaimed(wallet: string): boolean {
    return this.read(this.faucetClaimed, wallet, "faucet claim") ?? false
  }
  claimsOn(day: string): number {
    return this.read(this.faucetDays, day, "faucet day") ?? 0
  }
  lockedOf(wallet: string): bigint {
    return this.read(this.locked, wallet, "locked amount") ?? 0n
  }

  /** Appends one transfer; its legs must sum to zero and no wallet may go negative. */
  transfer(
    transferId: string,
    legs: ReadonlyArray<{ account: AccountId; amount: bigint; kind: PostingKind; counterparty?: WalletAddress | null }>,
    context: { escrowId: EscrowId | null; region: string; atMs: number }
  ): void {
    let total = 0n
    for (const leg of legs) total += leg.amount
    if (total !== 0n) throw new Error(`transfer ${transferId} does not balance: its legs sum to ${format(total)} USDC`)
    for (const leg of legs) {
      if (leg.amount === 0n) continue
      const next = this.balanceOf(leg.account) + leg.amount
      if (next < 0n && leg.account !== SystemAccount.external) {
        throw new Error(`transfer ${transferId} would take ${leg.account} negative (${next})`)
      }
      this.accounts.set(leg.account, next)
      this.dirtyAccounts.add(leg.account)
      this.postings.push({
        transferId,
        account: leg.account,
        amount: leg.amount,
        kind: leg.kind,
        escrowId: context.escrowId,
        counterparty: leg.counterparty ?? null,
        region: context.region,
        atMs: context.atMs
      })
    }
  }

  putEscrow(escrow: EscrowRecord): void {
    this.escrows.set(escrow.id, escrow)
    this.dirtyEscrows.add(escrow.id)
  }

  putKey(record: IdempotencyRecord, replaces: IdempotencyRecord | undefined): void {
    this.idempotencyKeys.set(slotOf(record.owner, record.route, record.key), record)
    // In memory the map is the store: rows to write would only pile up.
    if (this.complete) return
    if (replaces !== undefined) this.replacedKeys.push(replaces)
    this.newKeys.push(record)
  }

  putMandate(mandate: MandateRecord): void {
    this.mandates.set(mandate.id, mandate)
    this.dirtyMandates.add(mandate.id)
  }

  addLocked(wallet: string, delta: bigint): void {
    if (this.locked.has(wallet) || this.complete) this.locked.set(wallet, (this.locked.get(wallet) ?? 0n) + delta)
  }
}

export const utcDay = (atMs: number) => new Date(atMs).toISOString().slice(0, 10)

const asUsdc = (micros: bigint) => micros as Usdc

const invalid = (field: string, message: string) => Either.left(new InvalidInput({ field, message }))

/** `metadata.fly_region`, or `metadata.region` as some agents (the Go sample among them) send it, else the ledger's own region. */
const regionOf = (metadata: Metadata, fallback: string): string => {
  for (const key of ["fly_region", "region"]) {
    const region = metadata[key]
    if (typeof region === "string" && region.length > 0 && region.length <= 64) return region
  }
  return fallback
}

/** Referrers of a wallet, nearest first, as deep as the fee schedule pays. */
const referrerChain = (ws: WorkingSet, wallet: WalletAddress, depth: number): Array<WalletAddress> => {
  const chain: Array<WalletAddress> = []
  let current = ws.agent(wallet)
  while (current?.referrer && chain.length < depth) {
    chain.push(current.referrer)
    current = chain.length < depth ? ws.agent(current.referrer) : undefined
  }
  return chain
}

type Outcome<A> = Either.Either<A, LedgerError>

const registerAgent = (ws: WorkingSet, input: RegisterAgentInput, nowMs: number): Outcome<AgentRecord> => {
  const name = input.name.trim()
  if (name.length === 0 || name.length > Limits.agentNameChars) {
    return invalid("agent_name", `agent name must be 1-${Limits.agentNameChars} characters`)
  }
  // A generated wallet is 160 random bits: it is new (and the agents table's key would refuse a repeat).
  const wallet = input.wallet ?? newWalletAddress()
  if (input.wallet !== undefined && ws.agent(wallet) !== undefined) return Either.left(new WalletAlreadyRegistered({ wallet }))
  let referrer: WalletAddress | null = null
  if (input.referralCode !== undefined) {
    const owner = ws.agentByCode(input.referralCode)
    if (owner === undefined) return Either.left(new ReferralCodeNotFound({ referralCode: input.referralCode }))
    // A new wallet cannot be anyone's referrer yet, so the only cycle is itself.
    if (owner.wallet === wallet) return Either.left(new ReferralCycle({ wallet, referralCode: input.referralCode }))
    referrer = owner.wallet
  }
  const agent: AgentRecord = {
    agentId: newAgentId(nowMs),
    name,
    wallet,
    referralCode: newReferralCode(),
    referrer,
    createdAtMs: nowMs
  }
  ws.agents.set(wallet, agent)
  ws.agentsByCode.set(agent.referralCode, agent)
  ws.newAgents.push(agent)
  return Either.right(agent)
}

const walletBalance = (ws: WorkingSet, wallet: WalletAddress): WalletBalance => ({
  wallet,
  available: asUsdc(ws.balanceOf(wallet)),
  locked: asUsdc(ws.lockedOf(wallet))
})

const deposit = (
  ws: WorkingSet,
  wallet: WalletAddress,
  amount: Usdc,
  config: LedgerConfigShape,
  nowMs: number
): Outcome<WalletBalance> => {
  if (amount <= 0n) return invalid("amount", "a deposit must be greater than zero")
  if (ws.agent(wallet) === undefined) return Either.left(new AgentNotFound({ wallet }))
  if (ws.balanceOf(wallet) + amount > MAX_MICROS) return invalid("amount", "the balance would exceed the maximum")
  ws.transfer(
    `dep_${randomUUID()}`,
    [
      { account: SystemAccount.external, amount: -amount, kind: "deposit" },
      { account: wallet, amount, kind: "deposit" }
    ],
    { escrowId: null, region: config.region, atMs: nowMs }
  )
  return Either.right(walletBalance(ws, wallet))
}

const fundTreasury = (ws: WorkingSet, amount: Usdc, config: LedgerConfigShape, nowMs: number): Outcome<bigint> => {
  if (amount > 0n) {
    ws.transfer(
      `treasury_${nowMs}`,
      [
        { account: SystemAccount.external, amount: -amount, kind: "deposit" },
        { account: SystemAccount.faucetTreasury, amount, kind: "deposit" }
      ],
      { escrowId: null, region: config.region, atMs: nowMs }
    )
  }
  return Either.right(ws.balanceOf(SystemAccount.faucetTreasury))
}

const claimFaucet = (
  ws: WorkingSet,
  wallet: WalletAddress,
  agentName: string,
  config: LedgerConfigShape,
  nowMs: number
): Outcome<FaucetClaim> => {
  if (agentName.length > Limits.agentNameChars) return invalid("agent_name", `at most ${Limits.agentNameChars} characters`)
  if (ws.agent(wallet) === undefined) return Either.left(new AgentNotFound({ wallet }))
  if (ws.hasClaimed(wallet)) return Either.left(new FaucetAlreadyClaimed({ wallet }))
  const day = utcDay(nowMs)
  if (ws.claimsOn(day) >= config.faucetDailyCap) {
    return Either.left(new FaucetDailyCapReached({ day, cap: config.faucetDailyCap }))
  }
  const amount = config.faucetClaimAmount
  const treasury = ws.balanceOf(SystemAccount.faucetTreasury)
  if (treasury < amount) return Either.left(new FaucetTreasuryEmpty({ requiredMicros: amount, availableMicros: treasury }))
  ws.transfer(
    `faucet_${wallet}`,
    [
      { account: SystemAccount.faucetTreasury, amount: -amount, kind: "faucet" },
      { account: wallet, amount, kind: "faucet" }
    ],
    { escrowId: null, region: config.region, atMs: nowMs }
  )
  ws.faucetClaimed.set(wallet, true)
  ws.faucetDays.set(day, ws.claimsOn(day) + 1)
  ws.dirtyFaucetDays.add(day)
  ws.claims.push({ wallet, agentName, amount, day, atMs: nowMs })
  return Either.right({ wallet, agentName, credited: amount, balance: asUsdc(ws.balanceOf(wallet)) })
}

const mandateIsLive = (mandate: MandateRecord, nowMs: number) =>
  !mandate.revoked && (mandate.expiresAtMs === null || mandate.expiresAtMs > nowMs)

export const validateTerms = (terms: EscrowTerms, config: LedgerConfigShape): Either.Either<number, InvalidInput> => {
  if (terms.amount <= 0n) return invalid("amount_usdc", "must be greater than zero")
  if (terms.amount > MAX_MICROS) return invalid("amount_usdc", "exceeds the maximum amount")
  if (terms.payer === terms.payee) return invalid("payee_wallet", "payee must differ from payer")
  if (terms.description.length > Limits.descriptionChars) {
    return invalid("description", `at most ${Limits.descriptionChars} characters`)
  }
  if (terms.idempotencyKey !== undefined && (terms.idempotencyKey.length === 0 || terms.idempotencyKey.length > Limits.idempotencyKeyChars)) {
    return invalid("idempotency_key", `must be 1-${Limits.idempotencyKeyChars} characters`)
  }
  if (terms.idempotencyScope !== undefined) {
    const route = terms.idempotencyScope.route
    if (route.length === 0 || route.length > IdempotencyLimits.routeChars) {
      return invalid("idempotency_scope", `route must be 1-${IdempotencyLimits.routeChars} characters`)
    }
  }
  if (terms.requestSha256 !== undefined && !isSha256Hex(terms.requestSha256)) {
    return invalid("request_sha256", "expected 64 lowercase hex digits")
  }
  if (terms.metadata !== undefined) {
    // JSON.stringify throws on a bigint or a cycle: that is bad input, not a defect.
    let json: string | undefined
    try {
      json = JSON.stringify(terms.metadata)
    } catch {
      return invalid("metadata", "must be JSON: objects, arrays, strings, numbers, booleans and null")
    }
    const bytes = Buffer.byteLength(json ?? "", "utf8")
    if (bytes > Limits.metadataBytes) return invalid("metadata", `${bytes} bytes exceeds ${Limits.metadataBytes}`)
  }
  // Duration.decode throws on text it cannot parse ("5 fortnights"); decodeUnknown returns None.
  const timeout = terms.timeout === undefined ? Option.some(config.defaultEscrowTimeout) : Duration.decodeUnknown(terms.timeout)
  if (Option.isNone(timeout)) return invalid("timeout", "expected a duration such as \"15 minutes\" or a number of milliseconds")
  const timeoutMs = Duration.toMillis(timeout.value)
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > Duration.toMillis(config.maxEscrowTimeout)) {
    return invalid("timeout", `must be between 1 ms and ${Duration.format(config.maxEscrowTimeout)}`)
  }
  return Either.right(Math.ceil(timeoutMs))
}

const createEscrow = (
  ws: WorkingSet,
  terms: EscrowTerms,
  config: LedgerConfigShape,
  nowMs: number
): Outcome<EscrowRecord> => {
  const timeout = validateTerms(terms, config)
  if (Either.isLeft(timeout)) return Either.left(timeout.left)
  let keyed: { readonly slot: Omit<IdempotencyRecord, "escrowId" | "createdAtMs" | "expiresAtMs">; readonly expired: IdempotencyRecord | undefined } | undefined
  if (terms.idempotencyKey !== undefined) {
    const scope = scopeOf(terms)
    const requestSha256 = terms.requestSha256 ?? termsSha256(terms, terms.timeout === undefined ? null : timeout.right)
    const previous = ws.idempotencyKey(slotOf(scope.owner, scope.route, terms.idempotencyKey))
    if (previous !== undefined && previous.expiresAtMs > nowMs) {
      if (previous.requestSha256 !== requestSha256) return Either.left(new IdempotencyConflict({ idempotencyKey: terms.idempotencyKey }))
      const answered = ws.escrow(previous.escrowId)
      // Escrows are never deleted: a key's escrow is always there.
      if (answered === undefined) throw new Error(`idempotency key answers for escrow ${previous.escrowId}, which does not exist`)
      return Either.right(answered)
    }
    keyed = { slot: { ...scope, key: terms.idempotencyKey, requestSha256 }, expired: previous }
  }
  if (ws.agent(terms.payer) === undefined) return Either.left(new AgentNotFound({ wallet: terms.payer }))
  if (ws.agent(terms.payee) === undefined) return Either.left(new AgentNotFound({ wallet: terms.payee }))
  let mandate: MandateRecord | undefined
  let timeoutMs = timeout.right
  if (terms.mandateId !== undefined) {
    mandate = ws.mandate(terms.mandateId)
    if (mandate === undefined) return Either.left(new MandateNotFound({ mandateId: terms.mandateId }))
    const refuse = (reason: string) => Either.left(new MandateExceeded({ mandateId: terms.mandateId!, reason }))
    if (mandate.payer !== terms.payer || mandate.payee !== terms.payee) return refuse("it does not cover this payer and payee")
    if (!mandateIsLive(mandate, nowMs)) return refuse(mandate.revoked ? "it was revoked" : "it has expired")
    if (terms.amount > mandate.maxAmount) return refuse(`amount exceeds the per-escrow maximum of ${format(mandate.maxAmount)} USDC`)
    if (terms.amount > mandate.remaining) return refuse(`amount exceeds the remaining budget of ${format(mandate.remaining)} USDC`)
    // The payer's protection: an escrow under its mandate cannot hold its money for
    // longer than the mandate allows, nor outlive the mandate. An explicit timeout
    // beyond either is refused; the default one is shortened to fit.
    const boundMs = mandate.expiresAtMs === null ? mandate.maxTimeoutMs : Math.min(mandate.maxTimeoutMs, mandate.expiresAtMs - nowMs)
    if (terms.timeout === undefined) {
      timeoutMs = Math.min(timeoutMs, boundMs)
    } else if (timeoutMs > mandate.maxTimeoutMs) {
      return invalid("timeout_ms", `${timeoutMs} ms exceeds the ${mandate.maxTimeoutMs} ms max_timeout_ms of mandate ${mandate.id}`)
    } else if (mandate.expiresAtMs !== null && nowMs + timeoutMs > mandate.expiresAtMs) {
      return invalid(
        "timeout_ms",
        `the escrow would outlive mandate ${mandate.id}, which expires at ${new Date(mandate.expiresAtMs).toISOString()}; at most ${boundMs} ms`
      )
    }
  }
  const available = ws.balanceOf(terms.payer)
  if (available < terms.amount) {
    return Either.left(new InsufficientFunds({ wallet: terms.payer, requiredMicros: terms.amount, availableMicros: available }))
  }
  const metadata = terms.metadata ?? {}
  const escrow: EscrowRecord = {
    id: newEscrowId(nowMs),
    payer: terms.payer,
    payee: terms.payee,
    amount: terms.amount,
    released: asUsdc(0n),
    feePaid: asUsdc(0n),
    refunded: asUsdc(0n),
    status: "pending",
    description: terms.description,
    metadata,
    region: regionOf(metadata, config.region),
    idempotencyKey: terms.idempotencyKey ?? null,
    mandateId: terms.mandateId ?? null,
    createdAtMs: nowMs,
    expiresAtMs: nowMs + timeoutMs,
    settledAtMs: null,
    version: 1
  }
  if (mandate !== undefined) ws.putMandate({ ...mandate, remaining: asUsdc(mandate.remaining - terms.amount) })
  if (keyed !== undefined) {
    ws.putKey(
      { ...keyed.slot, escrowId: escrow.id, createdAtMs: nowMs, expiresAtMs: nowMs + Math.ceil(Duration.toMillis(config.idempotencyKeyTtl)) },
      keyed.expired
    )
  }
  ws.transfer(
    `${escrow.id}:1`,
    [
      { account: terms.payer, amount: -terms.amount, kind: "lock", counterparty: terms.payee },
      { account: SystemAccount.escrowHolding, amount: terms.amount, kind: "lock" }
    ],
    { escrowId: escrow.id, region: escrow.region, atMs: nowMs }
  )
  ws.addLocked(terms.payer, terms.amount)
  ws.putEscrow(escrow)
  ws.events.push({
    escrowId: escrow.id,
    seq: 1,
    kind: "created",
    fromStatus: null,
    toStatus: "pending",
    amount: terms.amount,
    region: escrow.region,
    atMs: nowMs
  })
  return Either.right(escrow)
}

const notPending = (escrow: EscrowRecord, attempted: string) =>
  Either.left(new EscrowNotPending({ escrowId: escrow.id, status: escrow.status, attempted }))

const releaseEscrow = (
  ws: WorkingSet,
  id: EscrowId,
  part: Usdc | undefined,
  config: LedgerConfigShape,
  nowMs: number
): Outcome<EscrowRecord> => {
  const escrow = ws.escrow(id)
  if (escrow === undefined) return Either.left(new EscrowNotFound({ escrowId: id }))
  if (escrow.status === "released" && part === undefined) return Either.right(escrow)
  if (escrow.status !== "pending") return notPending(escrow, "release")
  if (nowMs >= escrow.expiresAtMs) {
    // Past the deadline the money is the payer's again, whether or not the sweeper has
    // run: the refusal expires the escrow here, so the batch commits the refund with it
    // (the one command that writes when it refuses; the ledgers keep its changes).
    refund(ws, escrow, "expired", nowMs)
    return Either.left(new EscrowExpired({ escrowId: id, expiresAtMs: escrow.expiresAtMs }))
  }
  const left = remaining(escrow)
  const gross = part ?? left
  if (gross <= 0n) return invalid("amount_usdc", "must be greater than zero")
  if (gross > left) {
    return Either.left(new ReleaseExceedsRemaining({ escrowId: id, requestedMicros: gross, remainingMicros: left }))
  }
  const depth = config.fees.referralTiersPpm.length
  const parts = split(config.fees, gross, referrerChain(ws, escrow.payer, depth), referrerChain(ws, escrow.payee, depth))
  const seq = escrow.version + 1
  const final = gross === left
  ws.transfer(
    `${id}:${seq}`,
    [
      { account: SystemAccount.escrowHolding, amount: -gross, kind: "payout" },
      { account: escrow.payee, amount: parts.net, kind: "payout", counterparty: escrow.payer },
      { account: SystemAccount.platformFees, amount: parts.platform, kind: "fee" },
      ...parts.shares.map((share) => ({
        account: share.wallet,
        amount: share.amount,
        kind: "referral" as const,
        counterparty: share.side === "payer" ? escrow.payer : escrow.payee
      }))
    ],
    { escrowId: id, region: escrow.region, atMs: nowMs }
  )
  ws.addLocked(escrow.payer, -gross)
  const next: EscrowRecord = {
    ...escrow,
    released: asUsdc(escrow.released + gross),
    feePaid: asUsdc(escrow.feePaid + parts.fee),
    status: final ? "released" : "pending",
    settledAtMs: final ? nowMs : null,
    version: seq
  }
  ws.putEscrow(next)
  ws.events.push({
    escrowId: id,
    seq,
    kind: final ? "released" : "partially_released",
    fromStatus: "pending",
    toStatus: next.status,
    amount: gross,
    region: escrow.region,
    atMs: nowMs
  })
  return Either.right(next)
}

/** Cancel and expiry: what remains goes back to the payer, and back into the mandate's budget. */
const refund = (
  ws: WorkingSet,
  escrow: EscrowRecord,
  status: "cancelled" | "expired",
  nowMs: number
): EscrowRecord => {
  const left = remaining(escrow)
  const seq = escrow.version + 1
  ws.transfer(
    `${escrow.id}:${seq}`,
    [
      { account: SystemAccount.escrowHolding, amount: -left, kind: "refund" },
      { account: escrow.payer, amount: left, kind: "refund", counterparty: escrow.payee }
    ],
    { escrowId: escrow.id, region: escrow.region, atMs: nowMs }
  )
  ws.addLocked(escrow.payer, -left)
  if (escrow.mandateId !== null) {
    const mandate = ws.mandate(escrow.mandateId)
    if (mandate !== undefined) ws.putMandate({ ...mandate, remaining: asUsdc(mandate.remaining + left) })
  }
  const next: EscrowRecord = { ...escrow, refunded: asUsdc(escrow.refunded + left), status, settledAtMs: nowMs, version: seq }
  ws.putEscrow(next)
  ws.events.push({
    escrowId: escrow.id,
    seq,
    kind: status,
    fromStatus: "pending",
    toStatus: status,
    amount: left,
    region: escrow.region,
    atMs: nowMs
  })
  return next
}

const cancelEscrow = (ws: WorkingSet, id: EscrowId, nowMs: number): Outcome<EscrowRecord> => {
  const escrow = ws.escrow(id)
  if (escrow === undefined) return Either.left(new EscrowNotFound({ escrowId: id }))
  if (escrow.status === "cancelled") return Either.right(escrow)
  if (escrow.status !== "pending") return notPending(escrow, "cancel")
  return Either.right(refund(ws, escrow, "cancelled", nowMs))
}

const expireEscrow = (ws: WorkingSet, id: EscrowId, nowMs: number): Outcome<EscrowRecord | null> => {
  const escrow = ws.escrow(id)
  if (escrow === undefined || escrow.status !== "pending" || escrow.expiresAtMs > nowMs) return Either.right(null)
  return Either.right(refund(ws, escrow, "expired", nowMs))
}

const createMandate = (
  ws: WorkingSet,
  input: CreateMandateInput,
  config: LedgerConfigShape,
  nowMs: number
): Outcome<MandateRecord> => {
  if (input.payer === input.payee) return invalid("payee_wallet", "payee must differ from payer")
  if (input.maxAmount <= 0n) return invalid("max_amount_usdc", "must be greater than zero")
  if (input.budget <= 0n) return invalid("budget_usdc", "must be greater than zero")
  if (input.expiresAtMs !== undefined && input.expiresAtMs <= nowMs) return invalid("expires_at", "must be in the future")
  const maxTimeoutMs = input.maxTimeoutMs ?? Math.ceil(Duration.toMillis(config.defaultEscrowTimeout))
  const ceilingMs = Duration.toMillis(config.maxEscrowTimeout)
  if (!Number.isSafeInteger(maxTimeoutMs) || maxTimeoutMs <= 0 || maxTimeoutMs > ceilingMs) {
    return invalid("max_timeout_ms", `must be a whole number of milliseconds between 1 and ${ceilingMs} (${Duration.format(config.maxEscrowTimeout)})`)
  }
  if (ws.agent(input.payer) === undefined) return Either.left(new AgentNotFound({ wallet: input.payer }))
  if (ws.agent(input.payee) === undefined) return Either.left(new AgentNotFound({ wallet: input.payee }))
  const mandate: MandateRecord = {
    id: newMandateId(nowMs),
    payer: input.payer,
    payee: input.payee,
    maxAmount: input.maxAmount,
    budget: input.budget,
    remaining: input.budget,
    expiresAtMs: input.expiresAtMs ?? null,
    maxTimeoutMs,
    revoked: false,
    createdAtMs: nowMs
  }
  ws.putMandate(mandate)
  return Either.right(mandate)
}

const revokeMandate = (ws: WorkingSet, id: MandateId, payer: WalletAddress): Outcome<MandateRecord> => {
  const mandate = ws.mandate(id)
  // Someone else's mandate is reported as absent: its existence is not the caller's business.
  if (mandate === undefined || mandate.payer !== payer) return Either.left(new MandateNotFound({ mandateId: id }))
  if (mandate.revoked) return Either.right(mandate)
  const next = { ...mandate, revoked: true }
  ws.putMandate(next)
  return Either.right(next)
}

/**
 * Applies one command. A refusal leaves `ws` unchanged, except `EscrowExpired`: a
 * release after the deadline expires the escrow as it refuses (see `releaseEscrow`).
 */
export const apply = <C extends Command>(
  ws: WorkingSet,
  command: C,
  config: LedgerConfigShape,
  nowMs: number
): Either.Either<ResultOf<C>, LedgerError> => {
  const outcome = (() => {
    switch (command._tag) {
      case "RegisterAgent":
        return registerAgent(ws, command.input, nowMs)
      case "Deposit":
        return deposit(ws, command.wallet, command.amount, config, nowMs)
      case "FundTreasury":
        return fundTreasury(ws, command.amount, config, nowMs)
      case "ClaimFaucet":
        return claimFaucet(ws, command.wallet, command.agentName, config, nowMs)
      case "CreateEscrow":
        return createEscrow(ws, command.terms, config, nowMs)
      case "ReleaseEscrow":
        return releaseEscrow(ws, command.id, command.amount, config, nowMs)
      case "CancelEscrow":
        return cancelEscrow(ws, command.id, nowMs)
      case "ExpireEscrow":
        return expireEscrow(ws, command.id, nowMs)
      case "CreateMandate":
        return createMandate(ws, command.input, config, nowMs)
      case "RevokeMandate":
        return revokeMandate(ws, command.id, command.payer)
    }
  })()
  return outcome as Either.Either<ResultOf<C>, LedgerError>
}

/** The keys a command reads before anything is derived from loaded rows. */
export const directKeys = (command: Command) => {
  const wallets: Array<string> = []
  const escrowIds: Array<string> = []
  const idempotencySlots: Array<{ readonly owner: string; readonly route: string; readonly key: string }> = []
  const mandateIds: Array<string> = []
  const codes: Array<string> = []
  switch (command._tag) {
    case "RegisterAgent":
      if (command.input.wallet !== undefined) wallets.push(command.input.wallet)
      if (command.input.referralCode !== undefined) codes.push(command.input.referralCode)
      break
    case "Deposit":
    case "ClaimFaucet":
      wallets.push(command.wallet)
      break
    case "CreateEscrow":
      wallets.push(command.terms.payer, command.terms.payee)
      if (command.terms.idempotencyKey !== undefined) idempotencySlots.push({ ...scopeOf(command.terms), key: command.terms.idempotencyKey })
      if (command.terms.mandateId !== undefined) mandateIds.push(command.terms.mandateId)
      break
    case "ReleaseEscrow":
    case "CancelEscrow":
    case "ExpireEscrow":
      escrowIds.push(command.id)
      break
    case "CreateMandate":
      wallets.push(command.input.payer, command.input.payee)
      break
    case "RevokeMandate":
      mandateIds.push(command.id)
      break
    case "FundTreasury":
      break
  }
  return { wallets, escrowIds, idempotencySlots, mandateIds, codes }
}

/**
 * The `Ledger` methods that are commands, over any way of running one (the memory
 * ledger applies it at once; the SQL ledger queues it for group commit). Each method's
 * narrower error type is the engine's promise: a command refuses only with the errors
 * its rules name.
 */
export const commandMethods = (
  run: <C extends Command>(command: C) => Effect.Effect<ResultOf<C>, LedgerError | LedgerUnavailable>
): Pick<
  LedgerShape,
  "registerAgent" | "deposit" | "claimFaucet" | "createEscrow" | "releaseEscrow" | "cancelEscrow" | "createMandate" | "revokeMandate"
> => ({
  registerAgent: (input) => run({ _tag: "RegisterAgent", input }) as never,
  deposit: (wallet, amount) => run({ _tag: "Deposit", wallet, amount }) as never,
  claimFaucet: ({ wallet, agentName }) => run({ _tag: "ClaimFaucet", wallet, agentName }) as never,
  createEscrow: (terms) => run({ _tag: "CreateEscrow", terms }) as never,
  releaseEscrow: (id, options) => run({ _tag: "ReleaseEscrow", id, amount: options?.amount }) as never,
  cancelEscrow: (id) => run({ _tag: "CancelEscrow", id }) as never,
  createMandate: (input) => run({ _tag: "CreateMandate", input }) as never,
  revokeMandate: (id, payer) => run({ _tag: "RevokeMandate", id, payer }) as never
})
