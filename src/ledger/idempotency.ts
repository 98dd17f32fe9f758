/**
 * Idempotency keys bound to the request they were sent with.
 *
 * A key belongs to a scope: the caller that sent it (its wallet) and the route it
 * was sent to. Within the scope, the key is stored with the SHA-256 of the request
 * in a canonical form and the escrow it answered with, in the same transaction as
 * that escrow. The same key with the same request gets the same answer; the same
 * key with any other request is refused (`IdempotencyConflict`), so one payment
 * can never answer for a different request. A key lives for the ledger's
 * `idempotencyKeyTtl` (24 hours by default); the expiry sweeper forgets it after,
 * which keeps the table bounded, and the key may then be used afresh.
 */
import { createHash } from "node:crypto"
import type { EscrowTerms, IdempotencyScope } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import { Limits } from "../domain/limits.js"

/** What one key answered for. */
export interface IdempotencyRecord extends IdempotencyScope {
  readonly key: string
  readonly requestSha256: string
  readonly escrowId: EscrowId
  readonly createdAtMs: number
  readonly expiresAtMs: number
}

/** The route of a create through the `Escrow` port or the `Ledger` directly (no HTTP request). */
export const ESCROW_CREATE_ROUTE = "Escrow.create"
/** The route of a create through the REST API. */
export const REST_CREATE_ROUTE = "POST /api/escrow/create"

/** Bounds on what a scope may name (TIGER_STYLE). */
export const IdempotencyLimits = { routeChars: Limits.idempotencyRouteChars } as const

/** The slot a key occupies: unique per (owner, route, key). */
export const slotOf = (owner: string, route: string, key: string) => `${owner}\u0000${route}\u0000${key}`

/** Whose key it is: the given scope, else the escrow's opener (the payee under a mandate, the payer otherwise). */
export const scopeOf = (terms: EscrowTerms): IdempotencyScope =>
  terms.idempotencyScope ?? {
    owner: (terms.mandateId !== undefined ? terms.payee : terms.payer) as WalletAddress,
    route: ESCROW_CREATE_ROUTE
  }

/**
 * JSON with object keys sorted at every depth, `undefined` members left out and
 * bigints as decimal strings: two requests that mean the same serialize the same.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || value === undefined) return "null"
  if (typeof value === "bigint") return JSON.stringify(value.toString())
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/** SHA-256 (hex) of a request to a route, in canonical form. */
export const requestSha256 = (route: string, request: unknown): string =>
  createHash("sha256").update(canonicalJson({ route, request })).digest("hex")

/** The digest of a create given as terms (no HTTP request): every term that shapes the escrow. */
export const termsSha256 = (terms: EscrowTerms, timeoutMs: number | null): string =>
  requestSha256(scopeOf(terms).route, {
    payer: terms.payer,
    payee: terms.payee,
    amount: terms.amount,
    description: terms.description,
    metadata: terms.metadata ?? {},
    timeoutMs,
    mandateId: terms.mandateId ?? null
  })

export const isSha256Hex = (text: string) => /^[0-9a-f]{64}$/.test(text)
