/**
 * The settlement service's MCP tools. Each is a thin shell over the `Settlement`
 * operation its REST route calls (same authorization, same refusals) and answers with
 * the same JSON record, encoded by the same schema from the `HttpApi` contract.
 *
 * The caller is whoever the request's API key names (`McpCredential`); no tool takes
 * a key, a wallet "acting as", or any other credential among its arguments.
 */
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { Effect, Option, Schema } from "effect"
import { EscrowId, MandateId, WalletAddress } from "../../domain/ids.js"
import * as Usdc from "../../domain/Usdc.js"
import { Ledger } from "../../ledger/Ledger.js"
import * as Api from "../Api.js"
import { bodyOf, toWire } from "../errors.js"
import { type SettlementError, Unauthenticated } from "../../settlement/errors.js"
import { Refusals } from "../Refusals.js"
import { type Caller, Settlement } from "../../settlement/Settlement.js"
import * as View from "../views.js"
import { McpCredential } from "./McpCredential.js"
import { ToolFailure } from "./register.js"
import { Limits } from "../../domain/limits.js"

// ---------------------------------------------------------------------------
// Arguments: the contract's field schemas, with JSON Schema a model can act on
// ---------------------------------------------------------------------------

const wallet = (description: string) =>
  WalletAddress.annotations({
    jsonSchema: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$", description: `${description}: 0x followed by 40 hex digits` }
  })

const escrowId = EscrowId.annotations({
  jsonSchema: { type: "string", pattern: "^esc_[0-9a-z]{10,40}$", description: "The escrow id returned by create_escrow (esc_…)" }
})

const amount = Usdc.PositiveFromWire.annotations({
  jsonSchema: {
    description: "USDC to lock, greater than zero, at most 6 decimal places: a decimal string (\"1.50\") or a number (1.5)",
    anyOf: [{ type: "string", pattern: "^\\s*\\d+(\\.\\d{0,6})?\\s*$" }, { type: "number", exclusiveMinimum: 0 }]
  }
})

const description = Api.CreateEscrowRequest.fields.description.annotations({
  jsonSchema: { type: "string", maxLength: Limits.descriptionChars, description: "What the payee is paid for" }
})

const agentName = Api.FaucetClaimRequest.fields.agent_name.annotations({
  jsonSchema: { type: "string", minLength: 1, maxLength: Limits.agentNameChars, description: "Your agent's name (informational, stored with the claim)" }
})

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

const failure = ToolFailure

export const CreateEscrow = Tool.make("create_escrow", {
  description:
    "Lock USDC from the payer's wallet in escrow for the payee. Allowed for the payer, or for the payee holding a live " +
    "mandate from the payer. The payee bears a 1% fee on release. Returns the escrow (status \"pending\").",
  parameters: {
    payer_wallet: wallet("The wallet paying"),
    payee_wallet: wallet("The wallet to be paid"),
    amount_usdc: amount,
    description
  },
  success: Api.Escrow,
  failure
}).annotate(Tool.Title, "Create escrow").annotate(Tool.Destructive, false).annotate(Tool.OpenWorld, false)

export const CreatePaymentToken = Tool.make("create_payment_token", {
  description:
    "Mint a single-use payment token letting one payee open one escrow of at most max_amount_usdc against your wallet, " +
    "within expires_in_seconds (default 300, at most 3600). Give it to the payee, e.g. as `Authorization: Payment <token>` " +
    "on its paid route; it is shown only here. With mandate_id (one of your mandates to that payee) the escrow draws on that mandate's budget.",
  parameters: {
    payee_wallet: wallet("The only wallet that may redeem the token"),
    max_amount_usdc: Usdc.PositiveFromWire.annotations({
      jsonSchema: {
        description: "The largest escrow the token pays for, greater than zero, at most 6 decimal places: a decimal string (\"0.01\") or a number",
        anyOf: [{ type: "string", pattern: "^\\s*\\d+(\\.\\d{0,6})?\\s*$" }, { type: "number", exclusiveMinimum: 0 }]
      }
    }),
    expires_in_seconds: Schema.optional(
      Schema.Int.pipe(Schema.positive()).annotations({
        jsonSchema: { type: "integer", minimum: 1, maximum: 3600, description: "Lifetime in seconds (default 300, at most 3600)" }
      })
    ),
    mandate_id: Schema.optional(
      MandateId.annotations({
        jsonSchema: { type: "string", pattern: "^mdt_[0-9a-z]{10,40}$", description: "One of your mandates to the payee (mdt_…), to draw on its budget" }
      })
    )
  },
  success: Api.PaymentToken,
  failure
}).annotate(Tool.Title, "Create payment token").annotate(Tool.Destructive, false).annotate(Tool.OpenWorld, false)

export const ReleaseEscrow = Tool.make("release_escrow", {
  description:
    "Pay out a pending escrow to the payee (less the fee). Allowed for the payer, and for the payee when the escrow " +
    "was opened under a mandate. Releasing an already released escrow returns it unchanged.",
  parameters: { escrow_id: escrowId },
  success: Api.Escrow,
  failure
}).annotate(Tool.Title, "Release escrow").annotate(Tool.Idempotent, true).annotate(Tool.OpenWorld, false)

export const CancelEscrow = Tool.make("cancel_escrow", {
  description:
    "Refund a pending escrow to the payer. Allowed for the payee at any time and for the payer after the deadline. " +
    "Cancelling an already cancelled escrow returns it unchanged.",
  parameters: { escrow_id: escrowId },
  success: Api.Escrow,
  failure
}).annotate(Tool.Title, "Cancel escrow").annotate(Tool.Idempotent, true).annotate(Tool.OpenWorld, false)

export const GetEscrow = Tool.make("get_escrow", {
  description: "One escrow you are a party to (payer or payee).",
  parameters: { escrow_id: escrowId },
  success: Api.Escrow,
  failure
}).annotate(Tool.Title, "Get escrow").annotate(Tool.Readonly, true).annotate(Tool.Destructive, false).annotate(
  Tool.OpenWorld,
  false
)

export const ClaimFaucet = Tool.make("claim_faucet", {
  description: "Credit the faucet amount to your own wallet, once per wallet (and a few claims per client address per day). Returns what was credited and the new balance.",
  parameters: { wallet_address: wallet("Your own wallet"), agent_name: agentName },
  success: Api.FaucetClaimed,
  failure
}).annotate(Tool.Title, "Claim faucet").annotate(Tool.Destructive, false).annotate(Tool.OpenWorld, false)

export const GetBalance = Tool.make("get_balance", {
  description:
    "Your own wallet's balance: balance_usdc is available to spend; funds held by pending escrows you pay for are in locked_usdc.",
  parameters: { wallet_address: wallet("Your own wallet") },
  success: Api.Wallet,
  failure
}).annotate(Tool.Title, "Get balance").annotate(Tool.Readonly, true).annotate(Tool.Destructive, false).annotate(
  Tool.OpenWorld,
  false
)

export const ReferralStats = Tool.make("referral_stats", {
  description: "Your referral code, the agents you referred and what their escrows earned you (15% of each fee), by region.",
  parameters: {},
  success: Api.Referrals,
  failure
}).annotate(Tool.Title, "Referral stats").annotate(Tool.Readonly, true).annotate(Tool.Destructive, false).annotate(
  Tool.OpenWorld,
  false
)

export const Whoami = Tool.make("whoami", {
  description: "Who your API key belongs to: your agent's id, name, wallet address, referral code and referrer. " +
    "Call it first to learn the wallet the other tools ask for.",
  parameters: {},
  success: Api.AgentCard,
  failure
}).annotate(Tool.Title, "Who am I").annotate(Tool.Readonly, true).annotate(Tool.Destructive, false).annotate(
  Tool.OpenWorld,
  false
)

export const SettlementToolkit = Toolkit.make(
  CreateEscrow,
  CreatePaymentToken,
  ReleaseEscrow,
  CancelEscrow,
  GetEscrow,
  ClaimFaucet,
  GetBalance,
  ReferralStats,
  Whoami
)

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

const missingKey = new Unauthenticated({
  message: "missing API key: send `Authorization: Bearer <api_key>` with the MCP request (stdio: set PF_API_KEY)"
})

/** Every refusal as the REST error body. */
const asToolFailure = <A, R>(effect: Effect.Effect<A, SettlementError, R>): Effect.Effect<A, ToolFailure, R> =>
  Effect.mapError(effect, (error) => bodyOf(toWire(error)))

/** Handlers over `Settlement`; the key of the call in progress comes from `McpCredential`. */
export const layerHandlers = SettlementToolkit.toLayer(
  Effect.gen(function*() {
    const settlement = yield* Settlement
    const credential = yield* McpCredential
    const fees = (yield* Ledger).config.fees
    const escrowView = (record: Parameters<typeof View.escrowView>[0]) => View.escrowView(record, fees)
    // A refusal answers 200 with a tool error, so the HTTP side never sees it: counted here.
    const refusals = Option.getOrUndefined(yield* Effect.serviceOption(Refusals))

    /** Authenticates the call, then runs `f` as its caller; REST's 401/429 become tool errors. */
    const asCaller = <A>(f: (caller: Caller) => Effect.Effect<A, SettlementError>): Effect.Effect<A, ToolFailure> => {
      const call = asToolFailure(
        credential.bearer.pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.fail(missingKey), onSome: settlement.authenticate })),
          Effect.flatMap(f)
        )
      )
      return refusals === undefined ? call : Effect.tapError(call, (failure) => refusals.count(failure.error))
    }

    return SettlementToolkit.of({
      create_escrow: (args) =>
        asCaller((caller) =>
          settlement.createEscrow(caller, {
            payer: args.payer_wallet,
            payee: args.payee_wallet,
            amount: args.amount_usdc,
            description: args.description
          })
        ).pipe(Effect.map(escrowView)),
      create_payment_token: (args) =>
        asCaller((caller) =>
          settlement.mintPaymentToken(caller, {
            payee: args.payee_wallet,
            maxAmount: args.max_amount_usdc,
            expiresInSeconds: args.expires_in_seconds,
            mandateId: args.mandate_id
          })
        ).pipe(Effect.map(View.paymentTokenView)),
      release_escrow: ({ escrow_id }) => asCaller((caller) => settlement.release(caller, escrow_id)).pipe(Effect.map(escrowView)),
      cancel_escrow: ({ escrow_id }) => asCaller((caller) => settlement.cancel(caller, escrow_id)).pipe(Effect.map(escrowView)),
      get_escrow: ({ escrow_id }) => asCaller((caller) => settlement.get(caller, escrow_id)).pipe(Effect.map(escrowView)),
      claim_faucet: (args) =>
        Effect.flatMap(credential.clientAddress, (clientAddress) =>
          asCaller((caller) =>
            settlement.claimFaucet(caller, { wallet: args.wallet_address, agentName: args.agent_name, clientAddress })
          )).pipe(Effect.map(View.faucetView)),
      get_balance: ({ wallet_address }) =>
        asCaller((caller) => settlement.balance(caller, wallet_address)).pipe(Effect.map(View.walletView)),
      referral_stats: () => asCaller((caller) => settlement.referralStats(caller)).pipe(Effect.map(View.referralsView)),
      whoami: () => asCaller((caller) => settlement.me(caller)).pipe(Effect.map(View.agentCardView))
    })
  })
)

/** The tool names, in the order `tools/list` gives them. */
export const toolNames = Object.keys(SettlementToolkit.tools) as ReadonlyArray<keyof typeof SettlementToolkit.tools>
