/**
 * The JSON the dashboard's data API sends (`/api/dashboard/*`), as the page reads it: the
 * encoded forms of the schemas in src/http/dashboard/Api.ts. Amounts are decimal
 * strings of USDC (6 places), times ISO strings. test/dashboard/browser-types.ts
 * checks that the server's encoded types fit these.
 */

export type Status = "pending" | "released" | "cancelled" | "expired"

export interface Session {
  readonly scope: "operator" | "agent"
  readonly region: string
  readonly agent: {
    readonly agent_name: string
    readonly wallet_address: string
    readonly referral_code: string
  } | null
  readonly live: { readonly poll_interval_ms: number; readonly recheck_ms: number }
}

export interface Totals {
  readonly revenue_usdc: string
  readonly spent_usdc: string
  readonly fees_paid_usdc: string
  readonly referral_income_usdc: string
}

export interface RegionTotals extends Totals {
  readonly region: string
  readonly escrows: number
}

export interface SeriesPoint {
  readonly region: string
  readonly revenue_usdc: string
  readonly spent_usdc: string
  readonly referral_income_usdc: string
}

export interface Overview {
  readonly scope: "operator" | "agent"
  readonly totals: Totals
  readonly locked_usdc: string
  readonly available_usdc: string | null
  readonly platform_fees_usdc: string | null
  readonly by_region: ReadonlyArray<RegionTotals>
  readonly status_counts: Readonly<Record<Status, number>>
  readonly series: {
    readonly bucket_ms: number
    readonly buckets: ReadonlyArray<{ readonly start: string; readonly regions: ReadonlyArray<SeriesPoint> }>
  }
  readonly watermark: string
}

export interface NetworkAgent {
  readonly agent_name: string
  readonly wallet_address: string
  readonly referrer_wallet: string | null
  readonly referral_income_usdc: string | null
  readonly earned_for_referrer_usdc: string | null
}

export interface Network {
  readonly scope: "operator" | "agent"
  readonly root_wallet: string | null
  readonly agents: ReadonlyArray<NetworkAgent>
  readonly total_agents: number
  readonly truncated: boolean
  readonly earned_usdc: string
}

export interface AuditRow {
  readonly escrow_id: string
  readonly status: Status
  readonly region: string
  readonly payer_wallet: string
  readonly payee_wallet: string
  readonly payer_name: string | null
  readonly payee_name: string | null
  readonly amount_usdc: string
  readonly created_at: string
  readonly version: number
}

export interface AuditPage {
  readonly escrows: ReadonlyArray<AuditRow>
  readonly next_cursor: string | null
  readonly total: number
}

export interface Escrow {
  readonly escrow_id: string
  readonly status: Status
  readonly payer_wallet: string
  readonly payee_wallet: string
  readonly amount_usdc: string
  readonly net_usdc: string
  readonly released_usdc: string
  readonly fee_paid_usdc: string
  readonly refunded_usdc: string
  readonly remaining_usdc: string
  readonly metadata: { readonly [key: string]: unknown }
  readonly region: string
  readonly idempotency_key: string | null
  readonly mandate_id: string | null
  readonly description: string
  readonly created_at: string
  readonly expires_at: string
  readonly settled_at: string | null
}

export interface HistoryEvent {
  readonly seq: number
  readonly kind: string
  readonly from_status: Status | null
  readonly to_status: Status
  readonly amount_usdc: string
  readonly region: string
  readonly at: string
}

export interface EscrowDetail {
  readonly escrow: Escrow
  readonly payer_name: string | null
  readonly payee_name: string | null
  readonly history: ReadonlyArray<HistoryEvent>
}

export interface Watermark {
  readonly watermark: string
}
