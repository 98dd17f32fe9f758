/**
 * The operator dashboard's data API, as its own `HttpApi` contract: the page at
 * `/dashboard` reads everything it shows through these routes, with the signed-in
 * key as `Authorization: Bearer` (never in a URL).
 *
 * What a key sees: an agent's key its own wallet, escrows and referrals; the
 * operator key (`OPERATOR_API_KEY`) everything. Amounts go out as 6-place USDC
 * strings and times as ISO-8601, exactly as in the settlement API.
 *
 * The group joins the settlement service's router (`HttpApiBuilder.Router`), so it
 * shares its port, body limit and error shape; its OpenAPI document is served at
 * `/api/dashboard/openapi.json`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Schema } from "effect"
import { AgentId, EscrowId, ReferralCode, WalletAddress } from "../../domain/ids.js"
import { AmountOut, Escrow, EscrowStatus, Timestamp } from "../Api.js"
import type { Caller } from "../../settlement/Caller.js"
import * as Wire from "../errors.js"
import { Limits } from "../../domain/limits.js"

// ---------------------------------------------------------------------------
// Who is looking
// ---------------------------------------------------------------------------

/** The signed-in key: the operator (sees all) or one agent (sees its own). */
export type Viewer =
  | { readonly _tag: "Operator" }
  | { readonly _tag: "Agent"; readonly caller: Caller }

export class CurrentViewer extends Context.Tag("ringmaster/dashboard/CurrentViewer")<CurrentViewer, Viewer>() {}

/** The bearer key, as an agent key (via `Settlement.authenticate`) or the operator key. */
export class DashboardAuthorization extends HttpApiMiddleware.Tag<DashboardAuthorization>()(
  "ringmaster/dashboard/Authorization",
  {
    failure: Schema.Union(Wire.UnauthorizedError, Wire.TooManyRequestsError, Wire.ServiceUnavailableError),
    provides: CurrentViewer,
    security: {
      bearer: HttpApiSecurity.bearer.pipe(
        HttpApiSecurity.annotate(OpenApi.Description, "An agent's API key, or the operator key (OPERATOR_API_KEY)")
      )
    }
  }
) {}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

export const Scope = Schema.Literal("operator", "agent")

const Count = Schema.Int.pipe(Schema.nonNegative())
const RegionName = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(Limits.regionChars))

export const Session = Schema.Struct({
  scope: Scope,
  /** The service's own region (escrows without `metadata.fly_region` are tagged with it). */
  region: Schema.String,
  /** The signed-in agent; null for the operator. */
  agent: Schema.NullOr(Schema.Struct({
    agent_id: AgentId,
    agent_name: Schema.String,
    wallet_address: WalletAddress,
    referral_code: ReferralCode,
    referrer_wallet: Schema.NullOr(WalletAddress)
  })),
  /** How the page keeps itself current. */
  live: Schema.Struct({
    interval_ms: Count,
    poll_interval_ms: Count,
    /** The overview may lag the watermark by up to this (operator views are recomputed at most this often). */
    recheck_ms: Count
  })
})

/** Money moved by kind; for an agent exactly `Ledger.activity`, for the operator its sum over every wallet. */
export const Totals = Schema.Struct({
  /** Net received as payee (after fees). */
  revenue_usdc: AmountOut,
  /** Gross paid out of escrows as payer (released parts). */
  spent_usdc: AmountOut,
  /** Fees borne as payee. */
  fees_paid_usdc: AmountOut,
  referral_income_usdc: AmountOut
})

export const RegionTotals = Schema.Struct({
  region: Schema.String,
  /** Escrows tagged with this region in the viewer's scope, any status. */
  escrows: Count,
  ...Totals.fields
})

export const StatusCounts = Schema.Struct({ pending: Count, released: Count, cancelled: Count, expired: Count })

export const SeriesPoint = Schema.Struct({
  region: Schema.String,
  revenue_usdc: AmountOut,
  spent_usdc: AmountOut,
  referral_income_usdc: AmountOut
})

export const Series = Schema.Struct({
  /** Width of one bucket; chosen so the range fits in at most `MAX_BUCKETS`. */
  bucket_ms: Count,
  /** Buckets that saw money move, oldest first (the page fills the gaps with zeros). */
  buckets: Schema.Array(Schema.Struct({ start: Timestamp, regions: Schema.Array(SeriesPoint) }))
})

export const Overview = Schema.Struct({
  scope: Scope,
  /** The agent's wallet; null for the operator. */
  wallet_address: Schema.NullOr(WalletAddress),
  totals: Totals,
  /** Held by pending escrows: the agent's as payer, or everything for the operator. */
  locked_usdc: AmountOut,
  /** The agent's spendable balance; null for the operator. */
  available_usdc: Schema.NullOr(AmountOut),
  /** The platform's share of fees; operator only. */
  platform_fees_usdc: Schema.NullOr(AmountOut),
  by_region: Schema.Array(RegionTotals),
  status_counts: StatusCounts,
  series: Series,
  /** Changes whenever anything this view shows may have changed. */
  watermark: Schema.String,
  generated_at: Timestamp
})

export const NetworkAgent = Schema.Struct({
  agent_id: AgentId,
  agent_name: Schema.String,
  wallet_address: WalletAddress,
  referrer_wallet: Schema.NullOr(WalletAddress),
  /** All referral income this agent earned; null where the viewer may not see it. */
  referral_income_usdc: Schema.NullOr(AmountOut),
  /** What this agent's referrer earned from escrows this agent was a party to; null when unknown to the viewer. */
  earned_for_referrer_usdc: Schema.NullOr(AmountOut),
  /** Agents this one referred; null where the viewer may not see it. */
  referred_count: Schema.NullOr(Count),
  created_at: Timestamp
})

export const Network = Schema.Struct({
  scope: Scope,
  /** The signed-in agent's wallet (the tree's root); null for the operator (a forest). */
  root_wallet: Schema.NullOr(WalletAddress),
  agents: Schema.Array(NetworkAgent),
  /** Agents in scope; more than `agents.length` when `truncated`. */
  total_agents: Count,
  truncated: Schema.Boolean,
  /** Referral income in scope. */
  earned_usdc: AmountOut
})

export const AuditParams = Schema.Struct({
  status: Schema.optional(EscrowStatus),
  region: Schema.optional(RegionName),
  /** Escrows where this wallet is the payer or the payee. */
  counterparty: Schema.optional(WalletAddress),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100))),
  /** The previous page's `next_cursor`: escrows created before it. */
  cursor: Schema.optional(EscrowId)
})

export const AuditRow = Schema.Struct({
  escrow_id: EscrowId,
  status: EscrowStatus,
  region: Schema.String,
  payer_wallet: WalletAddress,
  payee_wallet: WalletAddress,
  /** Names the viewer may see (the operator all; an agent its own and its referred agents'). */
  payer_name: Schema.NullOr(Schema.String),
  payee_name: Schema.NullOr(Schema.String),
  amount_usdc: AmountOut,
  released_usdc: AmountOut,
  fee_paid_usdc: AmountOut,
  refunded_usdc: AmountOut,
  description: Schema.String,
  created_at: Timestamp,
  settled_at: Schema.NullOr(Timestamp),
  version: Count
})

export const AuditPage = Schema.Struct({
  /** Newest first. */
  escrows: Schema.Array(AuditRow),
  next_cursor: Schema.NullOr(EscrowId),
  /** Escrows matching the filters (all pages). */
  total: Count,
  limit: Count
})

export const HistoryEvent = Schema.Struct({
  seq: Count,
  kind: Schema.Literal("created", "partially_released", "released", "cancelled", "expired"),
  from_status: Schema.NullOr(EscrowStatus),
  to_status: EscrowStatus,
  /** What this step moved: locked, released or refunded. */
  amount_usdc: AmountOut,
  region: Schema.String,
  at: Timestamp
})

export const EscrowDetail = Schema.Struct({
  escrow: Escrow,
  payer_name: Schema.NullOr(Schema.String),
  payee_name: Schema.NullOr(Schema.String),
  history: Schema.Array(HistoryEvent)
})

export const Watermark = Schema.Struct({ watermark: Schema.String })

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

const idParam = HttpApiSchema.param("id", EscrowId)

export class DashboardGroup extends HttpApiGroup.make("dashboard")
  .add(
    HttpApiEndpoint.get("session", "/session")
      .addSuccess(Session)
      .annotate(OpenApi.Description, "Who the key belongs to; the sign-in check")
  )
  .add(
    HttpApiEndpoint.get("overview", "/overview")
      .addSuccess(Overview)
      .annotate(OpenApi.Description, "Totals, per-region totals, status counts and the time series")
  )
  .add(
    HttpApiEndpoint.get("network", "/network")
      .addSuccess(Network)
      .annotate(OpenApi.Description, "The referral network: who referred whom, and what each referrer earned")
  )
  .add(
    HttpApiEndpoint.get("escrows", "/escrows")
      .setUrlParams(AuditParams)
      .addSuccess(AuditPage)
      .annotate(OpenApi.Description, "The escrow audit trail, filtered, newest first, paginated")
  )
  .add(
    HttpApiEndpoint.get("escrow")`/escrows/${idParam}`
      .addSuccess(EscrowDetail)
      .annotate(OpenApi.Description, "One escrow and its full transition history; parties and the operator only")
  )
  .add(
    HttpApiEndpoint.get("watermark", "/watermark")
      .addSuccess(Watermark)
      .annotate(OpenApi.Description, "Changes whenever the viewer's data may have changed (for polling)")
  )
  .add(
    HttpApiEndpoint.get("live", "/live")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
      .annotate(
        OpenApi.Description,
        "Server-sent events: `event: change` with the new watermark whenever the viewer's data changes. " +
          "Read with fetch (the key goes in the Authorization header); the stream ends after a while, reconnect."
      )
  )
  .middleware(DashboardAuthorization)
  .prefix("/api/dashboard") {}

export class DashboardApi extends HttpApi.make("dashboard")
  .add(DashboardGroup)
  .addError(Wire.BadRequestError)
  .addError(Wire.UnauthorizedError)
  .addError(Wire.ForbiddenError)
  .addError(Wire.NotFoundError)
  .addError(Wire.TooManyRequestsError)
  .addError(Wire.InternalError)
  .addError(Wire.ServiceUnavailableError)
  .annotate(OpenApi.Title, "ringmaster dashboard data")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "What the /dashboard page shows. An agent's key sees its own wallet, escrows and referrals; the operator key sees all."
  ) {}
