/**
 * Where refusals are counted, by their wire error code (`unauthorized`, `forbidden`,
 * `escrow_not_pending`, ...): the service composition provides it (Prometheus,
 * `ringmaster_refusals_total`); the standalone settlement server does not, and then
 * nothing is counted.
 *
 * Two places feed it, so each refusal is counted once:
 * - `observe`, around the whole HTTP app: every error response written with the
 *   `{ "error": code, "message" }` body, whoever wrote it (the REST edge, the paid
 *   routes, the drain's 503). The code is read back from the body because the
 *   writers are many and the body is the one thing they share; only error responses
 *   are read, and only small JSON ones.
 * - the MCP tools, whose refusals travel inside a 200 JSON-RPC answer.
 */
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect } from "effect"

export interface RefusalsShape {
  /** One refusal with this wire code. */
  readonly count: (code: string) => Effect.Effect<void>
}

export class Refusals extends Context.Tag("ringmaster/Refusals")<Refusals, RefusalsShape>() {}

/** Error bodies are a few hundred bytes; a larger body is not one of ours. */
const MAX_ERROR_BODY_BYTES = 8_192

const decoder = new TextDecoder()

/** The `error` code of an error response's JSON body, if it has one. */
export const codeOf = (response: HttpServerResponse.HttpServerResponse): string | undefined => {
  const body = response.body
  if (body._tag !== "Uint8Array" || body.body.length > MAX_ERROR_BODY_BYTES || !body.contentType.startsWith("application/json")) {
    return undefined
  }
  try {
    const parsed: unknown = JSON.parse(decoder.decode(body.body))
    const code = typeof parsed === "object" && parsed !== null ? (parsed as { error?: unknown }).error : undefined
    return typeof code === "string" ? code : undefined
  } catch {
    return undefined
  }
}

/** Counts every error response `app` writes by its code (a middleware for `HttpServer.serve`). */
export const observe = (refusals: RefusalsShape) =>
<E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.tap(app, (response) => {
    if (response.status < 400) return Effect.void
    const code = codeOf(response)
    return code === undefined ? Effect.void : refusals.count(code)
  })
