/**
 * Domain records ⇄ the contract's snake_case views. Pure, shared by the REST
 * handlers, the MCP tools (same JSON as the matching route) and the HTTP clients of
 * the `Escrow` and `Accounts` ports (which turn a view back into the record their
 * callers expect).
 */
import type { AgentRecord, EscrowRecord, MandateRecord, WalletBalance } from "../domain/Escrow.js"
import type { Usdc } from "../domain/Usdc.js"
import type { FeeSchedule } from "../domain/FeeSchedule.js"
import { payeeTerms } from "../domain/payeeTerms.js"
import type { ActivityReport, ActivityTotals, FaucetClaim, ReferralReport } from "../ledger/Ledger.js"
import type * as Api from "./Api.js"
import type { MintedToken } from "../settlement/PaymentTokens.js"

type Type<S extends { readonly Type: unknown }> = S["Type"]

export type EscrowView = Type<typeof Api.Escrow>
export type MandateView = Type<typeof Api.Mandate>

const usdc = (micros: bigint) => micros as Usdc

/** `fee_usdc` / `net_usdc` say what the payee bears and gets (`payeeTerms`). */
export const escrowView = (e: EscrowRecord, fees: FeeSchedule): EscrowView => {
  const terms = payeeTerms(fees, e)
  return {
    escrow_id: e.id,
    status: e.status,
    payer_wallet: e.payer,
    payee_wallet: e.payee,
    amount_usdc: e.amount,
    fee_usdc: usdc(terms.feeMicros),
    net_usdc: usdc(terms.netMicros),
    released_usdc: e.released,
    fee_paid_usdc: e.feePaid,
    refunded_usdc: e.refunded,
    remaining_usdc: usdc(terms.remainingMicros),
    description: e.description,
    metadata: e.metadata,
    region: e.region,
    idempotency_key: e.idempotencyKey,
    mandate_id: e.mandateId,
    created_at: e.createdAtMs,
    expires_at: e.expiresAtMs,
    settled_at: e.settledAtMs,
    version: e.version
  }
}

/** The record behind a view: every field the view carries, so nothing is lost. */
export const escrowFromView = (v: EscrowView): EscrowRecord => ({
  id: v.escrow_id,
  payer: v.payer_wallet,
  payee: v.payee_wallet,
  amount: v.amount_usdc,
  released: v.released_usdc,
  feePaid: v.fee_paid_usdc,
  refunded: v.refunded_usdc,
  status: v.status,
  description: v.description,
  metadata: v.metadata,
  region: v.region,
  idempotencyKey: v.idempotency_key,
  mandateId: v.mandate_id,
  createdAtMs: v.created_at,
  expiresAtMs: v.expires_at,
  settledAtMs: v.settled_at,
  version: v.version
})

export const mandateView = (m: MandateRecord): MandateView => ({
  mandate_id: m.id,
  payer_wallet: m.payer,
  payee_wallet: m.payee,
  max_amount_usdc: m.maxAmount,
  budget_usdc: m.budget,
  remaining_usdc: m.remaining,
  expires_at: m.expiresAtMs,
  max_timeout_ms: m.maxTimeoutMs,
  revoked: m.revoked,
  created_at: m.createdAtMs
})

/** A freshly minted payment token: the token itself appears only in this response. */
export const paymentTokenView = (minted: MintedToken): Type<typeof Api.PaymentToken> => ({
  payment_token: minted.token,
  payer_wallet: minted.terms.payer,
  payee_wallet: minted.terms.payee,
  max_amount_usdc: minted.terms.maxAmount,
  mandate_id: minted.terms.mandateId,
  created_at: minted.terms.createdAtMs,
  expires_at: minted.terms.expiresAtMs
})

export const walletView = (b: WalletBalance): Type<typeof Api.Wallet> => ({
  wallet_address: b.wallet,
  balance_usdc: b.available,
  locked_usdc: b.locked
})

export const faucetView = (c: FaucetClaim): Type<typeof Api.FaucetClaimed> => ({
  credited_usdc: c.credited,
  balance_usdc: c.balance
})

export const referralsView = (r: ReferralReport): Type<typeof Api.Referrals> => ({
  referral_code: r.agent.referralCode,
  referred_agents: r.referred.map((x) => ({
    agent_id: x.agent.agentId,
    agent_name: x.agent.name,
    wallet_address: x.agent.wallet,
    referral_code: x.agent.referralCode,
    created_at: x.agent.createdAtMs,
    earned_usdc: x.earned
  })),
  earned_usdc: r.earned,
  by_region: r.byRegion
})

/** The report behind a view, given the agent it is about (whose card the view does not carry). */
export const referralsFromView = (agent: AgentRecord, v: Type<typeof Api.Referrals>): ReferralReport => ({
  agent,
  referred: v.referred_agents.map((x) => ({
    agent: {
      agentId: x.agent_id,
      wallet: x.wallet_address,
      name: x.agent_name,
      referralCode: x.referral_code,
      referrer: agent.wallet,
      createdAtMs: x.created_at
    },
    earned: x.earned_usdc
  })),
  earned: v.earned_usdc,
  byRegion: v.by_region
})

export const agentCardView = (a: AgentRecord): Type<typeof Api.AgentCard> => ({
  agent_id: a.agentId,
  agent_name: a.name,
  wallet_address: a.wallet,
  referral_code: a.referralCode,
  referrer_wallet: a.referrer,
  created_at: a.createdAtMs
})

export const agentFromCard = (v: Type<typeof Api.AgentCard>): AgentRecord => ({
  agentId: v.agent_id,
  wallet: v.wallet_address,
  name: v.agent_name,
  referralCode: v.referral_code,
  referrer: v.referrer_wallet,
  createdAtMs: v.created_at
})

const totalsView = (t: ActivityTotals) => ({
  spent_usdc: t.spent,
  revenue_usdc: t.revenue,
  fees_paid_usdc: t.feesPaid,
  referral_income_usdc: t.referralIncome
})
const totalsFromView = (v: ReturnType<typeof totalsView>): ActivityTotals => ({
  spent: v.spent_usdc,
  revenue: v.revenue_usdc,
  feesPaid: v.fees_paid_usdc,
  referralIncome: v.referral_income_usdc
})

export const activityView = (a: ActivityReport): Type<typeof Api.Activity> => ({
  wallet_address: a.wallet,
  ...totalsView(a),
  by_region: Object.fromEntries(Object.entries(a.byRegion).map(([region, t]) => [region, totalsView(t)]))
})

export const activityFromView = (v: Type<typeof Api.Activity>): ActivityReport => ({
  wallet: v.wallet_address,
  ...totalsFromView(v),
  byRegion: Object.fromEntries(Object.entries(v.by_region).map(([region, t]) => [region, totalsFromView(t)]))
})
