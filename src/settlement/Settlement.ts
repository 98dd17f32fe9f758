/**
 * The settlement service's operations, with authorization: what a given caller may
 * do to the ledger. Transport-free: the REST handlers and the MCP tools both call
 * this, so the rules exist once.
 *
 * Who may do what :
 * - create: the payer (owner of `payer_wallet`), or the payee holding a live
 *   mandate from the payer; the ledger then checks the mandate's per-escrow maximum
 *   and remaining budget and decrements it in the same transaction as the lock.
 * - release: the payer; the payee too when the escrow was opened under a mandate or
 *   with a payment token (the payer authorized the payment up front either way).
 * - cancel: the payee at any time; the payer once the deadline has passed (or
 *   always, with `payerMayCancelBeforeDeadline`).
 * - get: the two parties. Faucet and wallet balance: the wallet's owner.
 * - rotate and revoke keys, grant and revoke mandates: only with the agent's current
 *   key (`requireCurrentKey`). A key a rotation replaced keeps working for ordinary
 *   calls during its grace, so a fleet can switch keys; it can never mint a key or
 *   hand out spending rights, so a leaked key the owner rotated away is contained.
 * - payment tokens: the payer mints one for a payee (and optionally one of its own
 *   mandates to that payee); the payee redeems it at create instead of holding a
 *   mandate: the token's rule (PaymentTokens.ts `redeem`) decides.
 * Every refusal happens before the ledger is touched, so it changes nothing.
 */
import { Clock, Context, Duration, Effect, Layer, type Redacted } from "effect"
import * as Errors from "../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowStatus, MandateRecord, Metadata, WalletBalance } from "../domain/Escrow.js"
import type { EscrowId, MandateId, ReferralCode, WalletAddress } from "../domain/ids.js"
import { format as formatUsdc, type Usdc } from "../domain/Usdc.js"
import { requestSha256, REST_CREATE_ROUTE } from "../ledger/idempotency.js"
import {
  type ActivityReport,
  type CancelError,
  type CreateError,
  type EscrowPage,
  type FaucetClaim,
  Ledger,
  type ReferralReport,
  type ReleaseError
} from "../ledger/Ledger.js"
import type { Caller } from "./Caller.js"
import { ApiKeys } from "./ApiKeys.js"
import { KeyInGrace, NotAuthorized, PayerCannotCover, type PaymentTokenInvalid, type RateLimited, Unauthenticated } from "./errors.js"
import { type MintedToken, PaymentTokens } from "./PaymentTokens.js"
import * as RateLimits from "./RateLimits.js"
import { SettlementConfig } from "./SettlementConfig.js"
import { BoundedMap } from "../domain/BoundedMap.js"

export type { Caller }

export interface CreateEscrowInput {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly amount: Usdc
  readonly description: string
  readonly metadata?: Metadata | undefined
  /** Milliseconds until the deadline; the ledger's default when absent. */
  readonly timeoutMs?: number | undefined
  /** A payee's create: the mandate to use (default: the payer's newest live one for the caller). */
  readonly mandateId?: MandateId | undefined
  /** A payee's create paid by the payer's payment token (its mandate, if any, comes from the token). */
  readonly paymentToken?: Redacted.Redacted<string> | undefined
}

export interface RegisteredAgent {
  readonly agent: AgentRecord
  /** Shown to the registrant once. */
  readonly apiKey: Redacted.Redacted<string>
}

export interface SettlementShape {
  /** The agent behind an API key; also spends one request of its rate limit. */
  readonly authenticate: (
    apiKey: Redacted.Redacted<string>
  ) => Effect.Effect<Caller, Unauthenticated | RateLimited | Errors.LedgerUnavailable>
  /** Spends one registration of the client address's rate limit (checked before the body is read). */
  readonly admitRegistration: (clientAddress: string) => Effect.Effect<void, RateLimited>
  /** Registers an agent and issues its first key. */
  readonly registerAgent: (
    input: { readonly name: string; readonly wallet?: WalletAddress | undefined; readonly referralCode?: ReferralCode | undefined }
  ) => Effect.Effect<
    RegisteredAgent,
    | Errors.InvalidInput
    | Errors.WalletAlreadyRegistered
    | Errors.ReferralCodeNotFound
    | Errors.ReferralCycle
    | Errors.LedgerUnavailable
  >
  /**
   * A new key for the caller's agent; its older keys work for `graceSeconds` (at most,
   * and by default, the configured grace; 0 ends them now). Current key only.
   */
  readonly rotateKey: (
    caller: Caller,
    input?: { readonly graceSeconds?: number | undefined }
  ) => Effect.Effect<
    { readonly apiKey: Redacted.Redacted<string>; readonly previousExpiresAtMs: number },
    KeyInGrace | Errors.InvalidInput | Errors.LedgerUnavailable
  >
  /** Ends every other key of the caller's agent now, grace included. Current key only. */
  readonly revokeKeys: (
    caller: Caller
  ) => Effect.Effect<{ readonly revokedCount: number; readonly revokedAtMs: number }, KeyInGrace | Errors.LedgerUnavailable>
  /**
   * Pays the faucet to the caller's own wallet, at most `faucetClaimsPerAddressPerDay`
   * claims per `clientAddress` (the HTTP client's; "stdio" for the local MCP process).
   */
  readonly claimFaucet: (
    caller: Caller,
    input: { readonly wallet: WalletAddress; readonly agentName: string; readonly clientAddress: string }
  ) => Effect.Effect<FaucetClaim, NotAuthorized | RateLimited | Errors.FaucetError>
  readonly balance: (caller: Caller, wallet: WalletAddress) => Effect.Effect<WalletBalance, NotAuthorized | Errors.LedgerUnavailable>
  readonly createMandate: (
    caller: Caller,
    input: {
      readonly payee: WalletAddress
      readonly maxAmount: Usdc
      readonly budget: Usdc
      readonly expiresAtMs?: number | undefined
      readonly maxTimeoutMs?: number | undefined
    }
  ) => Effect.Effect<MandateRecord, KeyInGrace | Errors.InvalidInput | Errors.AgentNotFound | Errors.LedgerUnavailable>
  readonly revokeMandate: (
    caller: Caller,
    id: MandateId
  ) => Effect.Effect<MandateRecord, KeyInGrace | Errors.MandateNotFound | Errors.LedgerUnavailable>
  /** A single-use token letting `payee` open one escrow of at most `maxAmount` against the caller's wallet. */
  readonly mintPaymentToken: (
    caller: Caller,
    input: {
      readonly payee: WalletAddress
      readonly maxAmount: Usdc
      readonly expiresInSeconds?: number | undefined
      readonly mandateId?: MandateId | undefined
    }
  ) => Effect.Effect<MintedToken, KeyInGrace | NotAuthorized | Errors.InvalidInput | Errors.MandateNotFound | Errors.LedgerUnavailable>
  readonly createEscrow: (
    caller: Caller,
    input: CreateEscrowInput,
    idempotencyKey?: string | undefined
  ) => Effect.Effect<EscrowRecord, NotAuthorized | PaymentTokenInvalid | PayerCannotCover | CreateError>
  readonly release: (
    caller: Caller,
    id: EscrowId,
    amount?: Usdc | undefined
  ) => Effect.Effect<EscrowRecord, NotAuthorized | ReleaseError>
  readonly cancel: (caller: Caller, id: EscrowId) => Effect.Effect<EscrowRecord, NotAuthorized | CancelError>
  readonly get: (caller: Caller, id: EscrowId) => Effect.Effect<EscrowRecord, NotAuthorized | Errors.EscrowNotFound | Errors.LedgerUnavailable>
  readonly list: (
    caller: Caller,
    query: {
      readonly status?: EscrowStatus | undefined
      readonly region?: string | undefined
      readonly limit?: number | undefined
      readonly cursor?: EscrowId | undefined
    }
  ) => Effect.Effect<EscrowPage, Errors.LedgerUnavailable>
  readonly referralStats: (caller: Caller) => Effect.Effect<ReferralReport, Errors.AgentNotFound | Errors.LedgerUnavailable>
  /** The caller's own card: an API key alone tells its holder which agent and wallet it is. */
  readonly me: (caller: Caller) => Effect.Effect<AgentRecord, Errors.AgentNotFound | Errors.LedgerUnavailable>
  /** Any agent's public card (name, referral code, referrer), for any authenticated agent. */
  readonly agentCard: (caller: Caller, wallet: WalletAddress) => Effect.Effect<AgentRecord, Errors.AgentNotFound | Errors.LedgerUnavailable>
  /** The caller's own wallet's money in and out, per region. */
  readonly activity: (caller: Caller, wallet: WalletAddress) => Effect.Effect<ActivityReport, NotAuthorized | Errors.LedgerUnavailable>
}

export class Settlement extends Context.Tag("ringmaster/Settlement")<Settlement, SettlementShape>() {
  /** Needs the `Ledger`, `ApiKeys`, `PaymentTokens` and `SettlementConfig`. */
  static readonly layer: Layer.Layer<Settlement, never, Ledger | ApiKeys | PaymentTokens | SettlementConfig> = Layer.effect(
    Settlement,
    Effect.suspend(() => make)
  )
}

/** Escrows whose parties an instance remembers, at most (~250 bytes each). */
const KNOWN_ESCROWS_CAPACITY = 16_384

/** What authorizing a settlement reads of an escrow: fixed when it is opened. */
interface EscrowParties {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly mandateId: MandateId | null
  readonly paidWithToken: boolean
}

/**
 * Set in an escrow's metadata when a payment token paid for it, so its payee may
 * release it. Only this service sets it: a create that carries it is refused.
 */
export const PAID_WITH_TOKEN = "paid_with_token"

const paidWithToken = (escrow: EscrowRecord) => escrow.metadata[PAID_WITH_TOKEN] === true

const isParty = (parties: Pick<EscrowParties, "payer" | "payee">, caller: Caller) => parties.payer === caller.wallet || parties.payee === caller.wallet

/** An idempotency key's scope and the digest of the create as the caller sent it (a defaulted mandate is not part of it). */
const createRequestIdentity = (caller: Caller, input: CreateEscrowInput) => ({
  idempotencyScope: { owner: caller.wallet, route: REST_CREATE_ROUTE },
  requestSha256: requestSha256(REST_CREATE_ROUTE, {
    payer_wallet: input.payer,
    payee_wallet: input.payee,
    amount_usdc: formatUsdc(input.amount),
    description: input.description,
    metadata: input.metadata ?? null,
    timeout_ms: input.timeoutMs ?? null,
    mandate_id: input.mandateId ?? null
  })
})

const refuse = (message: string, field?: string): Effect.Effect<never, NotAuthorized> =>
  Effect.fail(new NotAuthorized(field === undefined ? { message } : { message, field }))

/**
 * Refuses a caller whose key a rotation replaced (403 `key_in_grace`). Every
 * operation that manages credentials or spending rights (keys, mandates, payment
 * tokens) runs this first: such a key authenticates ordinary calls until its grace
 * ends, but must not outlast it by issuing something new.
 */
export const requireCurrentKey = (caller: Caller): Effect.Effect<void, KeyInGrace> =>
  caller.keyExpiresAtMs === null
    ? Effect.void
    : Effect.fail(new KeyInGrace({ agentId: caller.agentId, expiresAtMs: caller.keyExpiresAtMs }))

/** The caller's key as the key store names it. */
const callerKey = (caller: Caller) => ({
  agentId: caller.agentId,
  wallet: caller.wallet,
  keyHash: caller.keyHash,
  expiresAtMs: caller.keyExpiresAtMs
})

export const make = Effect.gen(function*() {
  const ledger = yield* Ledger
  const keys = yield* ApiKeys
  const tokens = yield* PaymentTokens
  const config = yield* SettlementConfig
  const limits = yield* RateLimits.make({
    agentRequestsPerSecond: config.agentRequestsPerSecond,
    registrationsPerMinute: config.registrationsPerMinute,
    faucetClaimsPerAddressPerDay: config.faucetClaimsPerAddressPerDay,
    maxKeys: config.rateLimitMaxKeys
  })
  const graceMs = Duration.toMillis(config.keyRotationGrace)
  const maxGraceSeconds = Math.floor(graceMs / 1000)

  /** The requested grace, in ms: whole seconds from 0 to the configured grace; absent, the configured grace. */
  const rotationGraceMs = (graceSeconds: number | undefined): Effect.Effect<number, Errors.InvalidInput> =>
    graceSeconds === undefined
      ? Effect.succeed(graceMs)
      : Number.isInteger(graceSeconds) && graceSeconds >= 0 && graceSeconds <= maxGraceSeconds
      ? Effect.succeed(graceSeconds * 1000)
      : Effect.fail(
        new Errors.InvalidInput({
          field: "grace_seconds",
          message: `must be a whole number of seconds from 0 to ${maxGraceSeconds} (the configured key rotation grace), got ${graceSeconds}`
        })
      )

  const unauthenticated = Effect.fail(
    new Unauthenticated({ message: "missing or invalid API key: send `Authorization: Bearer <api_key>`" })
  )

  /**
   * The parties of the escrows this instance opened or read. An escrow's payer, payee
   * and mandate never change, and escrows are never deleted, so a remembered entry
   * stays true: a release authorizes from it without first reading the escrow, a
   * read that shows in a lifecycle's CPU over HTTP (bench:http). An escrow not
   * remembered (opened through another instance, or evicted: the oldest entry goes
   * first) is read.
   */
  const knownParties = new BoundedMap<string, EscrowParties>(KNOWN_ESCROWS_CAPACITY)
  const rememberParties = (escrow: EscrowRecord) => {
    if (knownParties.has(escrow.id)) return
    knownParties.set(escrow.id, { payer: escrow.payer, payee: escrow.payee, mandateId: escrow.mandateId, paidWithToken: paidWithToken(escrow) })
  }

  const notYours = (id: EscrowId) => refuse(`escrow ${id} is not yours: only its payer and payee may see or settle it`, "escrow_id")

  /** The escrow from the ledger, its parties remembered on the way. */
  const readEscrow = (id: EscrowId) => Effect.tap(ledger.getEscrow(id), rememberParties)

  /** The escrow, if the caller is one of its parties. */
  const partyEscrow = (caller: Caller, id: EscrowId) =>
    Effect.flatMap(readEscrow(id), (escrow) => (isParty(escrow, caller) ? Effect.succeed(escrow) : notYours(id)))

  /** The payer may release; the payee too when the escrow was opened under a mandate or with a payment token. */
  const releaseAs = (caller: Caller, id: EscrowId, amount: Usdc | undefined, parties: EscrowParties) =>
    !isParty(parties, caller)
      ? notYours(id)
      : parties.payer === caller.wallet || parties.mandateId !== null || parties.paidWithToken
      ? ledger.releaseEscrow(id, { amount })
      : refuse(`only the payer may release escrow ${id} (it was not opened under a mandate or with a payment token)`, "escrow_id")

  const createEscrow = (
    caller: Caller,
    input: CreateEscrowInput,
    idempotencyKey: string | undefined
  ): Effect.Effect<EscrowRecord, NotAuthorized | PaymentTokenInvalid | CreateError> => {
    const terms = {
      payer: input.payer,
      payee: input.payee,
      amount: input.amount,
      description: input.description,
      metadata: input.metadata,
      idempotencyKey,
      // The key is the caller's own, on this route, bound to the request as sent.
      ...(idempotencyKey === undefined ? {} : createRequestIdentity(caller, input)),
      timeout: input.timeoutMs === undefined ? undefined : Duration.millis(input.timeoutMs)
    }
    if (input.metadata !== undefined && PAID_WITH_TOKEN in input.metadata) {
      return refuse(`metadata.${PAID_WITH_TOKEN} is set by the service when a payment token pays`, "metadata")
    }
    if (input.paymentToken !== undefined) {
      if (input.mandateId !== undefined) return refuse("mandate_id comes from the payment token; send one or the other", "mandate_id")
      if (input.payee !== caller.wallet) {
        return refuse(`a payment token is redeemed by its payee: payee_wallet ${input.payee} is not the caller ${caller.wallet}`, "payee_wallet")
      }
      return tokens.redeem(
        input.paymentToken,
        { payee: caller.wallet, payer: input.payer, amount: input.amount, idempotencyKey },
        (grant) =>
          ledger.createEscrow({
            ...terms,
            metadata: { ...input.metadata, [PAID_WITH_TOKEN]: true },
            payer: grant.payer,
            mandateId: grant.mandateId
          })
      )
    }
    if (caller.wallet === input.payer) {
      return input.mandateId === undefined
        ? ledger.createEscrow(terms)
        : refuse("mandate_id is for a payee's create; the payer opens escrows directly", "mandate_id")
    }
    if (caller.wallet !== input.payee) {
      return refuse(`wallet ${input.payer} is not yours: only the payer, or the payee under a mandate, may open this escrow`, "payer_wallet")
    }
    // The payee's create: the ledger re-checks the mandate (parties, liveness,
    // maximum, budget) and decrements its budget in the same transaction as the lock.
    if (input.mandateId !== undefined) return ledger.createEscrow({ ...terms, mandateId: input.mandateId })
    return Effect.flatMap(ledger.findLiveMandate(input.payer, input.payee), (mandate): Effect.Effect<EscrowRecord, NotAuthorized | CreateError> =>
      mandate === null
        ? refuse(`no live mandate from ${input.payer} lets you open escrows against that wallet`, "payer_wallet")
        : ledger.createEscrow({ ...terms, mandateId: mandate.id })
    )
  }

  const service: SettlementShape = {
    authenticate: (apiKey) =>
      Effect.flatMap(keys.verify(apiKey), (key): Effect.Effect<Caller, Unauthenticated | RateLimited> =>
        key === null ? unauthenticated : Effect.as(limits.agent(key.agentId), {
          agentId: key.agentId,
          wallet: key.wallet,
          keyHash: key.keyHash,
          keyExpiresAtMs: key.expiresAtMs
        })
      ),

    admitRegistration: limits.registration,

    registerAgent: (input) =>
      Effect.gen(function*() {
        const agent = yield* ledger.registerAgent(input)
        // The agent exists from here on; a failure to store its key is reported
        // loudly (503), and the wallet must then be registered again under a new one.
        const apiKey = yield* keys.issue({ agentId: agent.agentId, wallet: agent.wallet }).pipe(
          Effect.tapError((error) =>
            Effect.logError("api key for a new agent could not be stored", { agentId: agent.agentId, error: error.message })
          )
        )
        return { agent, apiKey }
      }),

    rotateKey: (caller, input) =>
      requireCurrentKey(caller).pipe(
        Effect.zipRight(rotationGraceMs(input?.graceSeconds)),
        Effect.flatMap((ms) => keys.rotate(callerKey(caller), ms))
      ),

    revokeKeys: (caller) => Effect.zipRight(requireCurrentKey(caller), keys.revokeOthers(callerKey(caller))),

    claimFaucet: (caller, input) =>
      input.wallet === caller.wallet
        ? Effect.flatMap(limits.faucetClaim(input.clientAddress), (giveBack) =>
          // A claim the ledger refused (already claimed, treasury empty) paid nothing and does not
          // count; one whose outcome is unknown (storage failure) does.
          Effect.tapError(ledger.claimFaucet({ wallet: input.wallet, agentName: input.agentName }), (error) =>
            error._tag === "LedgerUnavailable" ? Effect.void : giveBack))
        : refuse(`wallet ${input.wallet} is not yours: the faucet pays only the caller's own wallet`, "wallet_address"),

    balance: (caller, wallet) =>
      wallet === caller.wallet
        ? ledger.balance(wallet)
        : refuse(`wallet ${wallet} is not yours: only its owner may read it`, "wallet_address"),

    createMandate: (caller, input) =>
      Effect.zipRight(requireCurrentKey(caller), ledger.createMandate({ ...input, payer: caller.wallet })),

    revokeMandate: (caller, id) => Effect.zipRight(requireCurrentKey(caller), ledger.revokeMandate(id, caller.wallet)),

    mintPaymentToken: (caller, input) => {
      const mint = tokens.mint({ ...input, payer: caller.wallet })
      // The ledger re-checks the mandate at create; this refuses a token that could never pay.
      const checked = input.mandateId === undefined ? mint : Effect.flatMap(
        ledger.getMandate(input.mandateId),
        (mandate): Effect.Effect<MintedToken, NotAuthorized | Errors.InvalidInput | Errors.LedgerUnavailable> =>
          mandate.payer !== caller.wallet
            ? refuse(`mandate ${input.mandateId} is not yours: a payment token draws only on the payer's own mandate`, "mandate_id")
            : mandate.payee !== input.payee
            ? refuse(`mandate ${input.mandateId} is for payee ${mandate.payee}, not ${input.payee}`, "mandate_id")
            : mint
      )
      return Effect.zipRight(requireCurrentKey(caller), checked)
    },

    createEscrow: (caller, input, idempotencyKey) =>
      createEscrow(caller, input, idempotencyKey).pipe(
        Effect.tap(rememberParties),
        // Only the payer is told its available balance; anyone opening against its wallet learns only the shortfall.
        Effect.catchTag("InsufficientFunds", (error): Effect.Effect<never, Errors.InsufficientFunds | PayerCannotCover> =>
          caller.wallet === input.payer
            ? Effect.fail(error)
            : Effect.fail(new PayerCannotCover({ wallet: error.wallet, requiredMicros: error.requiredMicros })))
      ),

    release: (caller, id, amount) => {
      const parties = knownParties.get(id)
      return parties !== undefined
        ? releaseAs(caller, id, amount, parties)
        : Effect.flatMap(readEscrow(id), (escrow): Effect.Effect<EscrowRecord, NotAuthorized | ReleaseError> =>
          releaseAs(caller, id, amount, { ...escrow, paidWithToken: paidWithToken(escrow) }))
    },

    cancel: (caller, id) =>
      Effect.flatMap(partyEscrow(caller, id), (escrow) => {
        // Repeating a cancel returns the record to either party: a payer whose scope
        // cancels after the payee already refunded it must not see a refusal.
        if (escrow.status === "cancelled") return Effect.succeed(escrow)
        if (escrow.payee === caller.wallet || config.payerMayCancelBeforeDeadline) return ledger.cancelEscrow(id)
        return Effect.flatMap(Clock.currentTimeMillis, (nowMs): Effect.Effect<EscrowRecord, NotAuthorized | CancelError> =>
          nowMs >= escrow.expiresAtMs
            ? ledger.cancelEscrow(id)
            : refuse(
              `the payer may cancel escrow ${id} only after its deadline ${new Date(escrow.expiresAtMs).toISOString()}; the payee may cancel it now`,
              "escrow_id"
            )
        )
      }),

    get: partyEscrow,

    list: (caller, query) => ledger.listEscrows({ ...query, wallet: caller.wallet }),

    referralStats: (caller) => ledger.referrals(caller.wallet),

    me: (caller) => ledger.getAgent(caller.wallet),

    agentCard: (_caller, wallet) => ledger.getAgent(wallet),

    activity: (caller, wallet) =>
      wallet === caller.wallet
        ? ledger.activity(wallet)
        : refuse(`wallet ${wallet} is not yours: only its owner may read its activity`, "address")
  }
  return service
})
