/**
 * `/tasks/{agent}` replies by idempotency key, so a repeated event is answered, not
 * run again. A key belongs to one holder of a payment credential on one task, bound to
 * the SHA-256 of the request (the payer named and the task's input in canonical form):
 *
 * - same key, same request, answered: the stored reply (the same result and escrow,
 *   or the same failure), with nothing run or charged again;
 * - same key, same request, still running: 409, nothing run;
 * - same key, a different request: 409 `idempotency_key_reused`, nothing run.
 *
 * Replies live in this process, for `TASK_REPLY_TTL_MS` and at most
 * `MAX_TASK_REPLIES` of them (the oldest goes first). The ledger holds the key too,
 * bound to the same digest (the escrow's `metadata.request_sha256`), for the ledger's
 * key lifetime: a different request is refused there as well, and the same request
 * finding its escrow already settled (a reply no longer held here) is refused with
 * 409 rather than run again (see `PaidRequests`). `Date.now()`, not `Clock`: a
 * freshness bound for a cache, no business time.
 */
import { Effect, Exit } from "effect"
import type { WalletAddress } from "../domain/ids.js"
import { requestSha256 } from "../ledger/idempotency.js"
import { IdempotencyKeyReused, IdempotentReplyUnavailable, type PaidRequestError } from "./errors.js"
import type { PaidResult } from "./PaidRequests.js"
import { BoundedMap } from "../domain/BoundedMap.js"

/** How long a reply is held: the ledger's default idempotency key lifetime. */
export const TASK_REPLY_TTL_MS = 24 * 60 * 60 * 1000
/** Replies held at most (~1 KiB each plus the result). */
export const MAX_TASK_REPLIES = 10_000

type Entry =
  & { readonly requestSha256: string; readonly expiresAtMs: number }
  & (
    | { readonly state: "running" }
    | { readonly state: "done"; readonly result: PaidResult }
    | { readonly state: "failed"; readonly error: PaidRequestError }
  )

/** The digest a `/tasks/{name}` request is bound by. */
export const taskRequestSha256 = (name: string, payer: WalletAddress | undefined, input: unknown) =>
  requestSha256(`POST /tasks/${name}`, { payer_wallet: payer, input: input ?? {} })

/**
 * Failures after which the key answered for nothing in the ledger (no escrow was
 * opened): a retry may run. A failed task's escrow was opened and refunded, so its
 * failure is the key's reply.
 */
const keyUnused = (error: PaidRequestError) => error._tag !== "TaskFailed"

export const make = (options: { readonly ttlMs?: number; readonly capacity?: number } = {}) => {
  const ttlMs = options.ttlMs ?? TASK_REPLY_TTL_MS
  const capacity = Math.max(1, options.capacity ?? MAX_TASK_REPLIES)
  const entries = new BoundedMap<string, Entry>(capacity, { touchOnSet: true })

  const put = (slot: string, entry: Entry) => {
    entries.set(slot, entry)
  }

  /** Runs `run` once per (scope, task, key); repeats get its reply (see the module's doc). */
  const once = (
    scope: string,
    task: string,
    key: string,
    digest: string,
    run: Effect.Effect<PaidResult, PaidRequestError>
  ): Effect.Effect<PaidResult, PaidRequestError> =>
    Effect.suspend(() => {
      const slot = `${scope}\u0000${task}\u0000${key}`
      const nowMs = Date.now()
      const prior = entries.get(slot)
      if (prior !== undefined && prior.expiresAtMs > nowMs) {
        if (prior.requestSha256 !== digest) return Effect.fail(new IdempotencyKeyReused({ idempotencyKey: key }))
        switch (prior.state) {
          case "done":
            return Effect.succeed(prior.result)
          case "failed":
            return Effect.fail(prior.error)
          case "running":
            return Effect.fail(
              new IdempotentReplyUnavailable({
                idempotencyKey: key,
                message: `a request with idempotency key ${key} is still running; repeat it once it has answered`
              })
            )
        }
      }
      const expiresAtMs = nowMs + ttlMs
      put(slot, { requestSha256: digest, expiresAtMs, state: "running" })
      return Effect.onExit(run, (exit) =>
        Effect.sync(() => {
          if (Exit.isSuccess(exit)) return put(slot, { requestSha256: digest, expiresAtMs, state: "done", result: exit.value })
          const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          if (failure !== undefined && !keyUnused(failure)) return put(slot, { requestSha256: digest, expiresAtMs, state: "failed", error: failure })
          entries.delete(slot)
        }))
    })

  return { once, size: () => entries.size }
}
