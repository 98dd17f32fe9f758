/**
 * Per-request billing, transport-free (the routes decode and encode around it):
 *
 * 1. validate the body (400 naming the field; nothing touched);
 * 2. price it: `/inference` by the price rule, `/tasks/{agent}` by the task;
 * 3. without a payment credential (`Authorization: Payment <token>`), answer 402
 *    with the price and this orchestrator's wallet: a wallet address is public, so
 *    naming one never authorizes charging it;
 * 4. open the escrow payer → orchestrator by redeeming the token (embedded ledger:
 *    here, with `PaymentTokens.redeem`, the same rule as the REST create; remote: the
 *    settlement service redeems it at create), held as `Escrow.use` holds it (402
 *    with a new challenge for a refused token, 402 without funds, 403 beyond the
 *    token's mandate; a refusal locks nothing and never discloses a balance);
 * 5. run the task, bounded by `TASK_TIMEOUT`, inside the shutdown-aware fiber set;
 * 6. it is settled before the response is written: released on success,
 *    cancelled (full refund) on failure, timeout, client abort or shutdown.
 */
import { createHash } from "node:crypto"
import { Cause, Context, Duration, Effect, Exit, Layer, Metric, Option, Redacted, Schema } from "effect"
import type { EscrowRecord, EscrowTerms } from "../domain/Escrow.js"
import { type EscrowId, WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"
import { Escrow } from "../escrow/Escrow.js"
import { settleOnExit } from "../escrow/settlement.js"
import type { PaymentTokenInvalid } from "../settlement/errors.js"
import { PaymentTokens } from "../settlement/PaymentTokens.js"
import { SpanName, timeoutFailWithin, withSpanWhenTraced } from "../observability/spans.js"
import type { CreateError } from "../escrow/Escrow.js"
import {
  IdempotencyKeyReused,
  IdempotentReplyUnavailable,
  InvalidRequest,
  MandateRefused,
  NoMandate,
  type InferenceError,
  type PaidRequestError,
  PaymentChallenge,
  PaymentRequired,
  SettlementUnavailable,
  TaskFailed,
  UnknownTask
} from "./errors.js"
import { Identity } from "./Identity.js"
import { Lifecycle } from "./Lifecycle.js"
import { inferencePrice, Pipeline, type TaskContext } from "./Pipeline.js"
import { ServiceConfig } from "./ServiceConfig.js"
import * as TaskReplies from "./TaskReplies.js"
import * as Telemetry from "./Telemetry.js"

export interface PaidResult {
  readonly result: unknown
  readonly cost: Usdc.Usdc
  readonly escrowId: EscrowId
  readonly region: string
}

/** The payer's payment token, from `Authorization: Payment <token>`; absent: the request is answered with a challenge. */
export type PaymentCredential = Redacted.Redacted<string> | undefined

/** Who may be answered a stored reply: the holder of this credential (its SHA-256, never the token). */
const credentialScope = (credential: Redacted.Redacted<string>) =>
  createHash("sha256").update(Redacted.value(credential), "utf8").digest("hex")

export interface PaidRequestsShape {
  /** `POST /inference {payer_wallet?, prompt}`. */
  readonly inference: (body: unknown, credential?: PaymentCredential) => Effect.Effect<PaidResult, InferenceError>
  /**
   * `POST /tasks/{name} {payer_wallet?, input}`; a repeated `idempotencyKey` (the event's id) with the same input and
   * the same payment credential is run and charged once, and answered with the same reply; with another input it is
   * refused (see `TaskReplies`).
   */
  readonly task: (
    name: string,
    body: unknown,
    idempotencyKey?: string | undefined,
    credential?: PaymentCredential
  ) => Effect.Effect<PaidResult, PaidRequestError>
}

export class PaidRequests extends Context.Tag("ringmaster/service/PaidRequests")<PaidRequests, PaidRequestsShape>() {}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const decodeWallet = Schema.decodeUnknownOption(WalletAddress)
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/

const outcomeCounter = (route: string, outcome: string) =>
  Metric.tagged(Metric.tagged(Telemetry.paidRequests, "route", route), "outcome", outcome)

export const make = Effect.gen(function*() {
  const escrow = yield* Escrow
  const identity = yield* Identity
  const pipeline = yield* Pipeline
  const lifecycle = yield* Lifecycle
  const config = yield* ServiceConfig
  // With the embedded ledger the tokens are redeemed here; a remote settlement service redeems them at create.
  const tokens = Option.getOrUndefined(yield* Effect.serviceOption(PaymentTokens))
  const payee = identity.wallet
  const region = config.region
  const replies = TaskReplies.make()
  const counters = new Map<string, Metric.Metric.Counter<number>>()
  const count = (route: string, outcome: string) => {
    const key = `${route}\u0000${outcome}`
    let counter = counters.get(key)
    if (counter === undefined) counters.set(key, counter = outcomeCounter(route, outcome))
    return Metric.increment(counter)
  }

  /** The payer named in the body, if any: with a payment token it must be the token's payer. */
  const payerOf = (body: Record<string, unknown>): Effect.Effect<WalletAddress | undefined, InvalidRequest> => {
    const raw = body["payer_wallet"]
    if (raw === undefined || raw === null || raw === "") return Effect.succeed(undefined)
    const wallet = decodeWallet(raw)
    if (Option.isNone(wallet)) return Effect.fail(new InvalidRequest({ field: "payer_wallet", message: "expected a wallet address: 0x followed by 40 hex digits" }))
    if (wallet.value === payee) return Effect.fail(new InvalidRequest({ field: "payer_wallet", message: "the orchestrator cannot pay itself" }))
    return Effect.succeed(wallet.value)
  }

  /** The escrow for `terms`, paid by the payment token `credential` (see the module's doc, step 4). */
  const openEscrow = (
    terms: Omit<EscrowTerms, "payer">,
    payer: WalletAddress | undefined,
    credential: Redacted.Redacted<string>
  ): Effect.Effect<EscrowRecord, InferenceError> => {
    const refused = refusal(payer, terms.amount)
    if (tokens !== undefined) {
      return tokens.redeem(
        credential,
        { payee, payer, amount: terms.amount, idempotencyKey: terms.idempotencyKey },
        (grant) => escrow.create({ ...terms, payer: grant.payer, mandateId: grant.mandateId })
      ).pipe(Effect.mapError(refused))
    }
    // The escrow journal is keyed by payer before the settlement service answers, so it must be named.
    if (payer === undefined) {
      return Effect.fail(
        new InvalidRequest({ field: "payer_wallet", message: "required with a remote settlement service: the wallet that minted the payment token" })
      )
    }
    return escrow.create({ ...terms, payer, paymentToken: credential }).pipe(Effect.mapError(refused))
  }

  /** A refused create as the route's error; a 402 never says what a balance is. */
  const refusal = (payer: WalletAddress | undefined, price: Usdc.Usdc) => (error: CreateError | PaymentTokenInvalid): InferenceError => {
    const named = payer ?? "the payment token's payer"
    switch (error._tag) {
      case "PaymentTokenInvalid":
        return new PaymentChallenge({ priceMicros: price, payee, refusal: error.message })
      case "InsufficientFunds":
        return new PaymentRequired({
          message: `the payer's available balance does not cover the price of ${Usdc.format(error.requiredMicros)} USDC`,
          requiredMicros: error.requiredMicros
        })
      case "MandateExceeded":
        return new MandateRefused({ message: error.message })
      case "MandateNotFound":
      case "AgentNotFound":
        return new NoMandate({ payer: named, payee })
      case "InvalidInput":
        return new InvalidRequest({ field: error.field, message: error.message })
      case "IdempotencyConflict":
        return new IdempotencyKeyReused({ idempotencyKey: error.idempotencyKey })
      case "Forbidden":
        // A remote settlement service refused the payer's token, or found no mandate for
        // this payer; anything else it refused is this service's own key, not the payer's doing.
        if (error.code === "payment_token_invalid") return new PaymentChallenge({ priceMicros: price, payee, refusal: error.reason })
        if (error.code === "forbidden") return new NoMandate({ payer: named, payee })
        return new SettlementUnavailable({ message: error.message })
      case "LedgerUnavailable":
        return new SettlementUnavailable({ message: error.message })
    }
  }

  const answeredBefore = (key: string | undefined, held: EscrowRecord) =>
    new IdempotentReplyUnavailable({
      idempotencyKey: key ?? "",
      message: `a request with this idempotency key was already settled (escrow ${held.id}, ${held.status}) and its reply is no longer held; ` +
        "nothing was run or charged again; send a new key to run it again"
    })

  /** Steps 3 to 6 for one priced request. */
  const charge = (
    route: string,
    payer: WalletAddress | undefined,
    credential: PaymentCredential,
    price: Usdc.Usdc,
    description: string,
    idempotencyKey: string | undefined,
    work: (ctx: TaskContext) => Effect.Effect<unknown, unknown>,
    requestSha256?: string | undefined
  ): Effect.Effect<PaidResult, InferenceError> =>
    Effect.gen(function*() {
      if (credential === undefined) return yield* new PaymentChallenge({ priceMicros: price, payee })
      const terms: Omit<EscrowTerms, "payer"> = {
        payee,
        amount: price,
        description,
        // The request's digest binds the escrow's key to it in the ledger too (and survives in the journal for recovery).
        metadata: requestSha256 === undefined ? { fly_region: region, route } : { fly_region: region, route, request_sha256: requestSha256 },
        idempotencyKey,
        // Past the task's own bound, so the ledger's expiry never races a settle; short, so a crash locks little for long.
        timeout: Duration.millis(config.taskTimeoutMs + config.escrowGraceMs)
      }
      // The escrow held as `Escrow.use` holds it (released if the work succeeds,
      // cancelled otherwise), on this service's `escrow` directly: no Scope, no
      // per-request service provision, both measurable at hundreds of requests/s.
      return yield* Effect.acquireUseRelease(
        // A keyed escrow already settled answered this request before: never run or charge it again.
        openEscrow(terms, payer, credential).pipe(
          Effect.filterOrFail((held) => held.status === "pending", (held) => answeredBefore(idempotencyKey, held))
        ),
        (held) => {
          const ctx: TaskContext = { payer: held.payer, escrowId: held.id, orchestrator: payee, region, timeoutMs: config.taskTimeoutMs }
          return work(ctx).pipe(
            timeoutFailWithin(config.taskTimeoutMs, () =>
              new TaskFailed({ escrowId: held.id, timedOut: true, message: `the task did not finish within ${config.taskTimeoutMs} ms; the escrow was cancelled` })),
            Effect.catchAllCause((cause): Effect.Effect<never, TaskFailed> => {
              if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
              const failure = Cause.failureOption(cause)
              if (Option.isSome(failure) && failure.value instanceof TaskFailed) return Effect.fail(failure.value)
              const reason = Cause.squash(cause)
              const message = reason instanceof Error ? reason.message : typeof reason === "object" && reason !== null && "message" in reason ? String((reason as { message: unknown }).message) : String(reason)
              return Effect.zipRight(
                Effect.logWarning("paid task failed; escrow cancelled", cause),
                Effect.fail(new TaskFailed({ escrowId: held.id, timedOut: false, message: `the task failed: ${message.slice(0, 500)}; the escrow was cancelled` }))
              )
            }),
            Effect.map((result) => ({ result, cost: price, escrowId: held.id, region }) satisfies PaidResult),
            Effect.annotateLogs({ escrow_id: held.id })
          )
        },
        (held, exit) => settleOnExit(escrow, held.id, Exit.isSuccess(exit) ? "release" : "cancel")
      )
    }).pipe(
      lifecycle.run,
      Effect.tapBoth({
        onSuccess: () => count(route, "paid"),
        onFailure: (e) => count(route, e._tag)
      }),
      withSpanWhenTraced(route === "inference" ? SpanName.paidInference : SpanName.paidTask, {
        attributes: { "paid.route": route, "payer.wallet": payer ?? "named by the payment token", "price.micros": price.toString() }
      })
    )

  const service: PaidRequestsShape = {
    inference: (body, credential) =>
      Effect.gen(function*() {
        if (!isObject(body)) return yield* new InvalidRequest({ field: "body", message: "expected a JSON object {payer_wallet?, prompt}" })
        const payer = yield* payerOf(body)
        const prompt = body["prompt"] ?? ""
        if (typeof prompt !== "string") return yield* new InvalidRequest({ field: "prompt", message: "expected a string" })
        if (prompt.length > config.maxPromptChars) {
          return yield* new InvalidRequest({ field: "prompt", message: `at most ${config.maxPromptChars} characters` })
        }
        return yield* charge("inference", payer, credential, inferencePrice(prompt), `Inference (${region})`, undefined, (ctx) =>
          pipeline.inference(prompt, ctx))
      }).pipe(Effect.tapErrorTag("InvalidRequest", () => count("inference", "InvalidRequest"))),

    task: (name, body, idempotencyKey, credential) =>
      Effect.gen(function*() {
        const task = pipeline.tasks.get(name)
        if (task === undefined) return yield* new UnknownTask({ name: name.slice(0, 64), known: [...pipeline.tasks.keys()] })
        if (!isObject(body)) return yield* new InvalidRequest({ field: "body", message: "expected a JSON object {payer_wallet?, input}" })
        if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
          return yield* new InvalidRequest({ field: "idempotency-key", message: "1-128 printable ASCII characters" })
        }
        const payer = yield* payerOf(body)
        const input = yield* task.decode(body["input"] ?? {}).pipe(
          Effect.mapError((e) => new InvalidRequest({ field: "input", message: e.message }))
        )
        const price = task.price(input)
        if (price <= 0n) return yield* new InvalidRequest({ field: "input", message: `task ${name} priced this input at zero` })
        const paid = (requestSha256?: string) =>
          charge(`task:${name}`, payer, credential, price, `Task ${name} (${region})`, idempotencyKey && `evt_${name}_${idempotencyKey}`, (ctx) =>
            task.run(input, ctx), requestSha256)
        if (idempotencyKey === undefined || credential === undefined) return yield* paid()
        const digest = TaskReplies.taskRequestSha256(name, payer, body["input"])
        // A stored reply goes only to whoever presents the same payment credential: the
        // token's holder, who is the payer or acts for it. Across tokens the ledger's key
        // (bound to the same digest) still refuses to charge twice.
        return yield* replies.once(credentialScope(credential), name, idempotencyKey, digest, paid(digest)).pipe(
          // The ledger names its own form of the key; the caller sent this one.
          Effect.mapError((e): PaidRequestError =>
            e._tag === "IdempotencyKeyReused"
              ? new IdempotencyKeyReused({ idempotencyKey })
              : e._tag === "IdempotentReplyUnavailable"
              ? new IdempotentReplyUnavailable({ idempotencyKey, message: e.message })
              : e
          )
        )
      }).pipe(
        Effect.tapError((e) => (e._tag === "InvalidRequest" || e._tag === "UnknownTask" ? count("task", e._tag) : Effect.void))
      )
  }
  return service
})

export const layer: Layer.Layer<PaidRequests, never, Escrow | Identity | Pipeline | Lifecycle | ServiceConfig> = Layer.effect(
  PaidRequests,
  make
)
