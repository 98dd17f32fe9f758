/**
 * Identities: wallets, agents, escrows, mandates, referral codes.
 *
 * Escrow and mandate ids sort by creation time (a millisecond timestamp prefix),
 * so a cursor over them pages in creation order on every SQL backend.
 */
import { randomBytes, randomFillSync } from "node:crypto"
import { Schema } from "effect"

/** Stored lower-case, so a checksummed (mixed-case) address names the same wallet. */
export const WalletAddress = Schema.Lowercase.pipe(
  Schema.compose(Schema.Lowercased),
  Schema.pattern(/^0x[0-9a-f]{40}$/, { message: () => "expected a wallet address: 0x followed by 40 hex digits" }),
  Schema.brand("WalletAddress")
).annotations({ identifier: "WalletAddress" })
export type WalletAddress = typeof WalletAddress.Type

/** System accounts are not wallets; their ids cannot collide with `0x…` addresses. */
export const SystemAccount = {
  /** Funds locked in pending escrows. */
  escrowHolding: "system:escrow_holding",
  /** The platform's share of fees. */
  platformFees: "system:platform_fees",
  /** The faucet's finite treasury. */
  faucetTreasury: "system:faucet_treasury",
  /** The outside world: deposits into the ledger come from here (it alone may go negative). */
  external: "system:external"
} as const
export type SystemAccount = (typeof SystemAccount)[keyof typeof SystemAccount]
export type AccountId = WalletAddress | SystemAccount

export const EscrowId = Schema.String.pipe(
  Schema.pattern(/^esc_[0-9a-z]{10,40}$/, { message: () => "expected an escrow id such as esc_…" }),
  Schema.brand("EscrowId")
).annotations({ identifier: "EscrowId" })
export type EscrowId = typeof EscrowId.Type

export const AgentId = Schema.String.pipe(Schema.pattern(/^agt_[0-9a-z]{10,40}$/), Schema.brand("AgentId"))
export type AgentId = typeof AgentId.Type

export const MandateId = Schema.String.pipe(Schema.pattern(/^mdt_[0-9a-z]{10,40}$/), Schema.brand("MandateId"))
export type MandateId = typeof MandateId.Type

export const ReferralCode = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{4,64}$/, { message: () => "expected a referral code of 4-64 letters, digits, _ or -" }),
  Schema.brand("ReferralCode")
)
export type ReferralCode = typeof ReferralCode.Type

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

// One crypto call per 4 KiB of ids instead of one per id: ids are minted on the hot path.
const pool = Buffer.alloc(4096)
let poolOffset = pool.length
const nextRandomByte = (): number => {
  if (poolOffset >= pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  return pool[poolOffset++]!
}

const randomSuffix = (length: number): string => {
  let out = ""
  // 252 is the largest multiple of 36 in a byte: rejecting above it keeps the alphabet uniform.
  while (out.length < length) {
    const byte = nextRandomByte()
    if (byte < 252) out += ALPHABET[byte % 36]
  }
  return out
}

/** `<prefix>_<11 base36 chars of ms timestamp><16 random chars>`: time-ordered, 82 bits of randomness. */
const timeOrdered = (prefix: string, nowMs: number) =>
  `${prefix}_${nowMs.toString(36).padStart(11, "0")}${randomSuffix(16)}`

export const newEscrowId = (nowMs: number): EscrowId => timeOrdered("esc", nowMs) as EscrowId
export const newMandateId = (nowMs: number): MandateId => timeOrdered("mdt", nowMs) as MandateId
export const newAgentId = (nowMs: number): AgentId => timeOrdered("agt", nowMs) as AgentId
export const newReferralCode = (): ReferralCode => `ref_${randomSuffix(12)}` as ReferralCode
export const newWalletAddress = (): WalletAddress => `0x${randomBytes(20).toString("hex")}` as WalletAddress
