/**
 * Ledger rows to records: the one mapping from the ledger's tables, for the SQL
 * ledger and for read-only reports over the same tables (the dashboard). Integers
 * arrive as bigint (SQLite with safe integers), number, or text (PostgreSQL int8).
 */
import type { AgentRecord, EscrowEvent, EscrowRecord, EscrowStatus, MandateRecord, Metadata } from "../domain/Escrow.js"
import type { AgentId, EscrowId, MandateId, ReferralCode, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import type { IdempotencyRecord } from "./idempotency.js"

export type Row = Record<string, unknown>

export const big = (value: unknown): bigint => (typeof value === "bigint" ? value : BigInt(value as string | number))
export const num = (value: unknown): number => Number(value)
export const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value))
export const usdc = (value: unknown) => big(value) as Usdc

export const toEscrow = (r: Row): EscrowRecord => ({
  id: r.id as EscrowId,
  payer: r.payer as WalletAddress,
  payee: r.payee as WalletAddress,
  amount: usdc(r.amount),
  released: usdc(r.released),
  feePaid: usdc(r.fee_paid),
  refunded: usdc(r.refunded),
  status: r.status as EscrowStatus,
  description: r.description as string,
  metadata: JSON.parse(r.metadata as string) as Metadata,
  region: r.region as string,
  idempotencyKey: (r.idempotency_key as string | null) ?? null,
  mandateId: (r.mandate_id as MandateId | null) ?? null,
  createdAtMs: num(r.created_at_ms),
  expiresAtMs: num(r.expires_at_ms),
  settledAtMs: numOrNull(r.settled_at_ms),
  version: num(r.version)
})

export const toAgent = (r: Row): AgentRecord => ({
  agentId: r.agent_id as AgentId,
  name: r.name as string,
  wallet: r.wallet as WalletAddress,
  referralCode: r.referral_code as ReferralCode,
  referrer: (r.referrer as WalletAddress | null) ?? null,
  createdAtMs: num(r.created_at_ms)
})

export const toMandate = (r: Row): MandateRecord => ({
  id: r.id as MandateId,
  payer: r.payer as WalletAddress,
  payee: r.payee as WalletAddress,
  maxAmount: usdc(r.max_amount),
  budget: usdc(r.budget),
  remaining: usdc(r.remaining),
  expiresAtMs: numOrNull(r.expires_at_ms),
  maxTimeoutMs: num(r.max_timeout_ms),
  revoked: num(r.revoked) === 1,
  createdAtMs: num(r.created_at_ms)
})

export const toIdempotencyKey = (r: Row): IdempotencyRecord => ({
  owner: r.owner as WalletAddress,
  route: r.route as string,
  key: r.key as string,
  requestSha256: r.request_sha256 as string,
  escrowId: r.escrow_id as EscrowId,
  createdAtMs: num(r.created_at_ms),
  expiresAtMs: num(r.expires_at_ms)
})

export const toEvent = (r: Row): EscrowEvent => ({
  escrowId: r.escrow_id as EscrowId,
  seq: num(r.seq),
  kind: r.kind as EscrowEvent["kind"],
  fromStatus: (r.from_status as EscrowStatus | null) ?? null,
  toStatus: r.to_status as EscrowStatus,
  amount: usdc(r.amount),
  region: r.region as string,
  atMs: num(r.at_ms)
})

