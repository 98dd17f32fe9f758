/**
 * Per-request billing, transport-free (the routes decode and encode around it):
 *
 * 1. validate the body (400 naming the field; nothing touched);
 * 2. price it: `/inference` by the seed's rule, `/tasks/{agent}` by the task;
 * 3. find the payer's live mandate to this orchestrator (embedded ledger: here, 403
 *    without one, its id remembered briefly since the ledger re-checks it at create;
 *    remote: the settlement service checks it at create);
 * 4. open the escrow payer → orchestrator, held as `Escrow.use` holds it (402 without funds,
 *    403 beyond the mandate; a refusal locks nothing);
 * 5. run the task, bounded by `TASK_TIMEOUT`, inside the shutdown-aware fiber set;
 * 6. it is settled before the response is written: released on success,
 *    cancelled (full refund) on failure, timeout, client abort or shutdown.
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Metric, Option, Schema } from "effect"
import type { EscrowRecord, EscrowTerms } from "../domain/Escrow.js"
import { type EscrowId, type MandateId, WalletAddress } from "../domain/ids.js"
import { format as formatUsdc, type Usdc } from "../domain/Usdc.js"
import { Escrow } from "../escrow/Escrow.js"
import { settleOnExit } from "../escrow/settlement.js"
import { timeoutFailWithin, withSpanWhenTraced } from "../observability/spans.js"
import { type CreateError, Ledger, type LedgerShape } from "../ledger/Ledger.js"
import {
  InvalidRequest,
  MandateRefused,
  NoMandate,
  type PaidRequestError,
  PaymentRequired,
  SettlementUnavailable,
  TaskFailed,
  UnknownTask
} from "./errors.js"
import { Identity } from "./Identity.js"
import { Lifecycle } from "./Lifecycle.js"
import { inferencePrice, Pipeline, type TaskContext } from "./Pipeline.js"
import { ServiceConfig } from "./ServiceConfig.js"
import * as Telemetry from "./Telemetry.js"

export interface PaidResult {
  readonly result: unknown
  readonly cost: Usdc
  readonly escrowId: EscrowId
  readonly region: string
}

export interface PaidRequestsShape {
  /** `POST /inference {payer_wallet, prompt}`. */
  readonly inference: (body: unknown) => Effect.Effect<PaidResult, PaidRequestError>
  /** `POST /tasks/{name} {payer_wallet, input}`; a repeated `idempotencyKey` (the event's id) is charged once. */
  readonly task: (name: string, body: unknown, idempotencyKey?: string | undefined) => Effect.Effect<PaidResult, PaidRequestError>
}

export class PaidRequests extends Context.Tag("ringmaster/service/PaidRequests")<PaidRequests, PaidRequestsShape>() {}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const decodeWallet = Schema.decodeUnknownOption(WalletAddress)
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/

/** How long a looked-up mandate id is used before it is looked up again (see `knownMandates`). */
export const MANDATE_ID_REFRESH_MS = 1_000
/** Payers whose mandate id is remembered at most; the oldest entry goes first. */
const MAX_KNOWN_MANDATES = 10_000

const outcomeCounter = (route: string, outcome: string) =>
  Metric.tagged(Metric.tagged(Telemetry.paidRequests, "route", route), "outcome", outcome)

export const make = Effect.gen(function*() {
  const escrow = yield* Escrow
  const identity = yield* Identity
  const pipeline = yield* Pipeline
  const lifecycle = yield* Lifecycle
  const config = yield* ServiceConfig
  // The embedded ledger checks mandates here; a remote settlement service checks them at create.
  const ledger = Option.getOrUndefined(yield* Effect.serviceOption(Ledger))
  const payee = identity.wallet
  const region = config.region
  const counters = new Map<string, Metric.Metric.Counter<number>>()
  const count = (route: string, outcome: string) => {
    const key = `${route}\u0000${outcome}`
    let counter = counters.get(key)
    if (counter === undefined) counters.set(key, counter = outcomeCounter(route, outcome))
    return Metric.increment(counter)
  }

  const payerOf = (body: Record<string, unknown>): Effect.Effect<WalletAddress, InvalidRequest> => {
    const raw = body["payer_wallet"]
    if (raw === undefined || raw === null || raw === "") {
      return Effect.fail(new InvalidRequest({ field: "payer_wallet", message: "required: the wallet that pays (it must have granted this orchestrator a mandate)" }))
    }
    const wallet = decodeWallet(raw)
    if (Option.isNone(wallet)) return Effect.fail(new InvalidRequest({ field: "payer_wallet", message: "expected a wallet address: 0x followed by 40 hex digits" }))
    if (wallet.value === payee) return Effect.fail(new InvalidRequest({ field: "payer_wallet", message: "the orchestrator cannot pay itself" }))
    return Effect.succeed(wallet.value)
  }

  /**
   * payer → the id of its live mandate to this orchestrator, as last looked up. Looking
   * it up is one SQL statement through the client per request (a span, a Scope, the
   * query): measured at ~200 µs, more than the rest of the escrow's bookkeeping. The id
   * alone is cached, never the mandate's state: the ledger checks the mandate again
   * under its lock at every create (revoked, expired, payer and payee, per-escrow
   * maximum, remaining budget; engine.ts `createEscrow`), so a cached id can never let
   * a revoked or exhausted mandate pay. A create refused for its mandate drops the
   * entry and looks again: a newer live mandate is then used, as an uncached lookup
   * would have; the same id found again means the refusal stands. Entries are looked up
   * afresh after `MANDATE_ID_REFRESH_MS`, so a newly granted mandate takes over (the
   * lookup prefers the newest) within that time even while the old one still pays.
   * `Date.now()`, not `Clock`: a freshness bound for a cache, no business time.
   */
  const knownMandates = new Map<WalletAddress, { readonly id: MandateId; readonly foundAtMs: number }>()

  const lookUpMandate = (payer: WalletAddress, ledger: LedgerShape): Effect.Effect<MandateId, NoMandate | SettlementUnavailable> =>
    ledger.findLiveMandate(payer, payee).pipe(
      Effect.mapError((e) => new SettlementUnavailable({ message: e.message })),
      Effect.flatMap((mandate) => {
        if (mandate === null) {
          knownMandates.delete(payer)
          return Effect.fail(new NoMandate({ payer, payee }))
        }
        knownMandates.delete(payer)
        if (knownMandates.size >= MAX_KNOWN_MANDATES) knownMandates.delete(knownMandates.keys().next().value!)
        knownMandates.set(payer, { id: mandate.id, foundAtMs: Date.now() })
        return Effect.succeed(mandate.id)
      })
    )

  /** The escrow for `terms` (without a mandate id), under the payer's live mandate when the ledger is embedded. */
  const openEscrow = (terms: EscrowTerms): Effect.Effect<EscrowRecord, PaidRequestError> => {
    const payer = terms.payer
    // A remote settlement service checks the mandate at create.
    if (ledger === undefined) return escrow.create(terms).pipe(Effect.mapError(refusal(payer)))
    const known = knownMandates.get(payer)
    if (known === undefined || Date.now() - known.foundAtMs >= MANDATE_ID_REFRESH_MS) {
      return Effect.flatMap(lookUpMandate(payer, ledger), (mandateId) =>
        escrow.create({ ...terms, mandateId }).pipe(Effect.mapError(refusal(payer))))
    }
    return escrow.create({ ...terms, mandateId: known.id }).pipe(
      Effect.catchIf(
        (error) => error._tag === "MandateNotFound" || error._tag === "MandateExceeded",
        (error) =>
          Effect.flatMap(lookUpMandate(payer, ledger), (mandateId) =>
            mandateId === known.id
              ? Effect.fail(error)
              : escrow.create({ ...terms, mandateId }))
      ),
      Effect.mapError((error) => (error._tag === "NoMandate" || error._tag === "SettlementUnavailable" ? error : refusal(payer)(error)))
    )
  }

  const refusal = (payer: WalletAddress) => (error: CreateError): PaidRequestError => {
    switch (error._tag) {
      case "InsufficientFunds":
        return new PaymentRequired({
          message: `wallet ${payer} has ${formatUsdc(error.availableMicros)} USDC available, ${formatUsdc(error.requiredMicros)} required`,
          requiredMicros: error.requiredMicros,
          availableMicros: error.availableMicros
        })
      case "MandateExceeded":
        return new MandateRefused({ message: error.message })
      case "MandateNotFound":
      case "AgentNotFound":
        return new NoMandate({ payer, payee })
      case "InvalidInput":
        return new InvalidRequest({ field: error.field, message: error.message })
      case "IdempotencyConflict":
        return new InvalidRequest({ field: "idempotency-key", message: error.message })
      case "LedgerUnavailable":
        // The settlement service answers a payee's create without a mandate with 403; the
        // HTTP Escrow client has no typed error for it (see the report: a typed mapping is asked for).
        return / 403 forbidden: /.test(error.message) ? new NoMandate({ payer, payee }) : new SettlementUnavailable({ message: error.message })
    }
  }

  /** Steps 3 to 6 for one priced request. */
  const charge = (
    route: string,
    payer: WalletAddress,
    price: Usdc,
    description: string,
    idempotencyKey: string | undefined,
    work: (ctx: TaskContext) => Effect.Effect<unknown, unknown>
  ): Effect.Effect<PaidResult, PaidRequestError> =>
    Effect.gen(function*() {
      const terms: EscrowTerms = {
        payer,
        payee,
        amount: price,
        description,
        metadata: { fly_region: region, route },
        idempotencyKey,
        // Past the task's own bound, so the ledger's expiry never races a settle; short, so a crash locks little for long.
        timeout: Duration.millis(config.taskTimeoutMs + config.escrowGraceMs)
      }
      // The escrow held as `Escrow.use` holds it (released if the work succeeds,
      // cancelled otherwise), on this service's `escrow` directly: no Scope, no
      // per-request service provision, both measurable at hundreds of requests/s.
      return yield* Effect.acquireUseRelease(
        openEscrow(terms),
        (held) => {
          const ctx: TaskContext = { payer, escrowId: held.id, orchestrator: payee, region, timeoutMs: config.taskTimeoutMs }
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
      withSpanWhenTraced(`PaidRequests.${route}`, { attributes: { "payer.wallet": payer, "price.micros": price.toString() } })
    )

  const service: PaidRequestsShape = {
    inference: (body) =>
      Effect.gen(function*() {
        if (!isObject(body)) return yield* new InvalidRequest({ field: "body", message: "expected a JSON object {payer_wallet, prompt}" })
        const payer = yield* payerOf(body)
        const prompt = body["prompt"] ?? ""
        if (typeof prompt !== "string") return yield* new InvalidRequest({ field: "prompt", message: "expected a string" })
        if (prompt.length > config.maxPromptChars) {
          return yield* new InvalidRequest({ field: "prompt", message: `at most ${config.maxPromptChars} characters` })
        }
        return yield* charge("inference", payer, inferencePrice(prompt), `Inference (${region})`, undefined, (ctx) =>
          pipeline.inference(prompt, ctx))
      }).pipe(Effect.tapErrorTag("InvalidRequest", () => count("inference", "InvalidRequest"))),

    task: (name, body, idempotencyKey) =>
      Effect.gen(function*() {
        const task = pipeline.tasks.get(name)
        if (task === undefined) return yield* new UnknownTask({ name: name.slice(0, 64), known: [...pipeline.tasks.keys()] })
        if (!isObject(body)) return yield* new InvalidRequest({ field: "body", message: "expected a JSON object {payer_wallet, input}" })
        if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
          return yield* new InvalidRequest({ field: "idempotency-key", message: "1-128 printable ASCII characters" })
        }
        const payer = yield* payerOf(body)
        const input = yield* task.decode(body["input"] ?? {}).pipe(
          Effect.mapError((e) => new InvalidRequest({ field: "input", message: e.message }))
        )
        const price = task.price(input)
        if (price <= 0n) return yield* new InvalidRequest({ field: "input", message: `task ${name} priced this input at zero` })
        return yield* charge(`task:${name}`, payer, price, `Task ${name} (${region})`, idempotencyKey && `evt_${name}_${idempotencyKey}`, (ctx) =>
          task.run(input, ctx))
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
