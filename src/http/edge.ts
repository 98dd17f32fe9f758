/**
 * The API's outermost middleware: the body size limit, and one error shape for
 * everything that goes wrong, whoever raised it.
 *
 * `HttpApiBuilder` would answer a schema decode failure with its own
 * `HttpApiDecodeError` body, an unknown route with an empty 404 and an unreadable
 * body with a defect (500). Clients of the escrow dialect expect
 * `{ "error", "message" }` everywhere, so this middleware, which sees failures
 * before the builder encodes them, writes every response itself:
 * - wire errors (from handlers and the auth middleware) with their status; the
 *   paid routes' 402 challenge with its `WWW-Authenticate` header too;
 * - decode failures as 400 `invalid_request` naming the field;
 * - unparseable JSON as 400 `invalid_json`; bodies over the limit as 413 (by
 *   `Content-Length` before reading anything, or while reading a chunked body);
 * - a `Content-Type` other than JSON on a POST, PUT, PATCH or DELETE as 415
 *   `unsupported_media_type` before reading anything (the platform would decode a
 *   form into the payload, and wait forever on an empty multipart one); JSON nested deeper than `MAX_JSON_DEPTH` as 400
 *   `invalid_request` naming `body`, on every route, before anything parses it
 *   (jsonBody.ts);
 * - unknown routes as 404 `not_found`; anything else as 500 `internal_error`,
 *   logged with its cause (never with the request's headers, which carry keys).
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Option } from "effect"
import {
  bodyOf,
  challengeHeader,
  isPaidRouteError,
  isWireError,
  type PaidRouteError,
  paidRouteBodyOf,
  paidRouteStatusOf,
  PaymentChallengeError,
  statusOf,
  UnsupportedMediaTypeError,
  type WireError
} from "./errors.js"
import { hasBody, JsonTooDeep, tooDeepMessage, unsupportedContentType, unsupportedMediaTypeMessage } from "./jsonBody.js"
import { checkDepth, withBufferedBody } from "./requestBody.js"

const MAX_MESSAGE_CHARS = 500

const respond = (error: WireError, extraHeaders?: Record<string, string>) => {
  const status = statusOf(error)
  let headers = extraHeaders
  const retryAfterMs = status === 429 ? Number(error.details?.["retry_after_ms"]) : NaN
  if (Number.isFinite(retryAfterMs)) headers = { ...headers, "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
  return HttpServerResponse.unsafeJson(bodyOf(error), headers === undefined ? { status } : { status, headers })
}

/** A 402 challenge carries its terms in `WWW-Authenticate` too, which no error schema can say. */
const respondPaidRoute = (error: PaidRouteError) => {
  const status = paidRouteStatusOf(error)
  return HttpServerResponse.unsafeJson(
    paidRouteBodyOf(error),
    error instanceof PaymentChallengeError ? { status, headers: { "www-authenticate": challengeHeader(error) } } : { status }
  )
}

const plain = (status: number, error: string, message: string, field?: string, headers?: Record<string, string>) => {
  const body: Record<string, string> = { error, message: message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS) + "…" : message }
  if (field !== undefined) body["field"] = field
  return HttpServerResponse.unsafeJson(body, headers === undefined ? { status } : { status, headers })
}

interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/** The platform's decode failure, as the dialect's 400 naming the (first) field. */
const decodeFailure = (issues: ReadonlyArray<DecodeIssue>) => {
  const issue = issues[0]
  if (issue === undefined) return plain(400, "invalid_request", "the request does not match the API")
  const field = issue.path.map(String).join(".")
  if (field === "") return plain(400, "invalid_request", `the request body must be a JSON object of the documented shape (${issue.message})`)
  return plain(400, "invalid_request", `${field}: ${issue.message}`, field)
}

const tooLarge = (maxBodyBytes: number) =>
  // `connection: close`: the unread rest of the body is not worth draining.
  plain(413, "payload_too_large", `the request body exceeds ${maxBodyBytes} bytes`, undefined, { connection: "close" })

const isTagged = (u: unknown, tag: string): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === tag

const bodyReadFailure = (error: { readonly cause?: unknown }, maxBodyBytes: number) =>
  error.cause instanceof JsonTooDeep
    ? plain(400, "invalid_request", tooDeepMessage, "body")
    : error.cause instanceof Error && error.cause.message === "maxBytes exceeded"
    ? tooLarge(maxBodyBytes)
    : plain(400, "invalid_json", "the request body is not valid JSON")

const fromCause = (maxBodyBytes: number) => (cause: Cause.Cause<unknown>) => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (isWireError(error)) return Effect.succeed(respond(error))
    if (isPaidRouteError(error)) return Effect.succeed(respondPaidRoute(error))
    if (isTagged(error, "HttpApiDecodeError")) return Effect.succeed(decodeFailure((error as any).issues))
    if (isTagged(error, "RouteNotFound")) {
      const request = (error as any).request as HttpServerRequest.HttpServerRequest
      return Effect.succeed(plain(404, "not_found", `no route ${request.method} ${request.url.split("?", 1)[0]}`))
    }
    if (isTagged(error, "RequestError")) return Effect.succeed(bodyReadFailure(error as any, maxBodyBytes))
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect) && isTagged(defect.value, "RequestError")) {
    return Effect.succeed(bodyReadFailure(defect.value as any, maxBodyBytes))
  }
  // A client that went away: nothing to answer.
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  return Effect.as(
    Effect.logError("unexpected failure in the settlement API", Cause.squash(cause)),
    plain(500, "internal_error", "unexpected failure; nothing is known to have changed")
  )
}

/**
 * The middleware for `HttpApiBuilder.middleware`. The routes see the request with
 * its body read in one step and bounded by `maxBodyBytes` (`requestBody.ts`).
 */
export const edge = (maxBodyBytes: number) => {
  const handle = fromCause(maxBodyBytes)
  return (app: HttpApp.Default): HttpApp.Default =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > maxBodyBytes) return Effect.succeed(tooLarge(maxBodyBytes))
      const contentType = unsupportedContentType(request.method, request.headers)
      if (contentType !== undefined) {
        return Effect.succeed(respond(
          new UnsupportedMediaTypeError({
            error: "unsupported_media_type",
            message: unsupportedMediaTypeMessage(contentType),
            field: "content-type"
          })
        ))
      }
      const buffered = withBufferedBody(request, maxBodyBytes)
      const served = Effect.provideService(app, HttpServerRequest.HttpServerRequest, buffered)
      // Every route, including those that ignore their body, refuses one nested too deep.
      return (hasBody(request.headers) ? Effect.zipRight(checkDepth(buffered), served) : served).pipe(
        Effect.catchAllCause(handle)
      )
    })
}
