/**
 * A Node request whose body is read in one step.
 *
 * `@effect/platform-node` 0.108 reads a body (`request.text` / `.json`) through
 * `Effect.runSync(Effect.cached(...))` — a fiber, a synchronized ref and a deferred
 * per request — then `acquireUseRelease` around a string-decoding stream listener.
 * Measured on this service (bench/http.ts, `--profile`), that chain was the largest
 * single cost of a POST after the runtime's own: a trivial `HttpApi` POST route cost
 * about twice a GET. This wrapper reads the same `IncomingMessage` with one
 * `Effect.async` (chunks into a `Buffer`, decoded once) and delegates every other
 * member to the platform's request, so routing, the `HttpApi` contract, its decoding
 * and the MCP transport see an ordinary `HttpServerRequest`.
 *
 * The limit and the failures are the platform's: more than the `MaxBodySize` in
 * effect (capped at the service's `maxBodyBytes`) fails with a `RequestError` whose
 * cause says "maxBytes exceeded"; unparseable JSON with a `RequestError` whose cause
 * is the `SyntaxError`; JSON nested deeper than `MAX_JSON_DEPTH` with one whose cause is
 * `JsonTooDeep`, before it is parsed (jsonBody.ts). Whichever of `text`, `json` or `arrayBuffer` is asked first
 * (or `urlParamsBody`) reads the body; later ones reuse it. `stream`, `multipart` and `upgrade` go to the
 * platform's request untouched (none of them may follow a buffered read, as there).
 *
 * An upstream fix would make the platform's own `text` this cheap; then this file
 * can go.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect, Inspectable, Option } from "effect"
import { IncomingMessage } from "node:http"
import { exceedsDepth, JsonTooDeep } from "./jsonBody.js"

class BufferedBodyRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  /** The body once read (or the failure to read it); every later reader gets the same. */
  private outcome: Effect.Effect<Buffer, HttpServerError.RequestError> | undefined
  /** The readers waiting while the body is being read. */
  private waiters: Array<(outcome: Effect.Effect<Buffer, HttpServerError.RequestError>) => void> | undefined

  constructor(
    private readonly inner: HttpServerRequest.HttpServerRequest,
    private readonly node: IncomingMessage,
    private readonly maxBodyBytes: number
  ) {
    super()
  }

  get source() {
    return this.inner.source
  }
  get url() {
    return this.inner.url
  }
  get originalUrl() {
    return this.inner.originalUrl
  }
  get method() {
    return this.inner.method
  }
  get cookies() {
    return this.inner.cookies
  }
  get headers() {
    return this.inner.headers
  }
  get remoteAddress() {
    return this.inner.remoteAddress
  }
  get multipart() {
    return this.inner.multipart
  }
  get multipartStream() {
    return this.inner.multipartStream
  }
  get upgrade() {
    return this.inner.upgrade
  }
  get stream() {
    return this.inner.stream
  }
  modify(options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]): HttpServerRequest.HttpServerRequest {
    return new BufferedBodyRequest(this.inner.modify(options), this.node, this.maxBodyBytes)
  }

  private failure(cause: unknown) {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }

  private get buffer(): Effect.Effect<Buffer, HttpServerError.RequestError> {
    if (this.outcome !== undefined) return this.outcome
    return Effect.flatMap(HttpIncomingMessage.MaxBodySize, (size) =>
      Effect.async<Buffer, HttpServerError.RequestError>((resume) => {
        if (this.outcome !== undefined) return resume(this.outcome)
        // A second reader while the first waits shares its read (the stream can be
        // drained once), as the platform's cached `text` does.
        if (this.waiters !== undefined) {
          const waiters = this.waiters
          waiters.push(resume)
          return Effect.sync(() => void waiters.splice(waiters.indexOf(resume), 1))
        }
        const waiters = [resume]
        this.waiters = waiters
        const limit = Option.isSome(size) ? Math.min(Number(size.value), this.maxBodyBytes) : this.maxBodyBytes
        const source = this.node
        const chunks: Array<Buffer> = []
        let bytes = 0
        const stop = () => {
          source.off("data", onData)
          source.off("end", onEnd)
          source.off("error", onError)
        }
        const settle = (outcome: Effect.Effect<Buffer, HttpServerError.RequestError>) => {
          stop()
          this.outcome = outcome
          this.waiters = undefined
          for (const waiter of waiters) waiter(outcome)
        }
        const onData = (chunk: Buffer) => {
          bytes += chunk.length
          if (bytes > limit) settle(Effect.fail(this.failure(new Error("maxBytes exceeded"))))
          else chunks.push(chunk)
        }
        const onEnd = () => settle(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)))
        const onError = (error: unknown) => settle(Effect.fail(this.failure(error)))
        source.on("data", onData)
        source.on("end", onEnd)
        source.on("error", onError)
        // Interrupted (the client went away): the last waiter stops listening.
        return Effect.sync(() => {
          waiters.splice(waiters.indexOf(resume), 1)
          if (waiters.length === 0 && this.outcome === undefined) {
            stop()
            // What was consumed is gone: a later reader fails instead of reading the rest.
            this.outcome = Effect.fail(this.failure(new Error("the body read was interrupted")))
            this.waiters = undefined
          }
        })
      }))
  }

  /** The body as text, decoded once. */
  private decoded: string | undefined
  /** Whether the body nests deeper than `MAX_JSON_DEPTH`, scanned once. */
  private tooDeep: boolean | undefined

  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    return Effect.map(this.buffer, (body) => (this.decoded ??= body.toString("utf8")))
  }

  /** Reads the body and fails with `JsonTooDeep` if it nests deeper than `MAX_JSON_DEPTH`. */
  get depthChecked(): Effect.Effect<string, HttpServerError.RequestError> {
    return Effect.flatMap(this.text, (text) =>
      (this.tooDeep ??= exceedsDepth(text)) ? Effect.fail(this.failure(new JsonTooDeep())) : Effect.succeed(text))
  }

  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    // Depth before parsing: everything after it (schema decoding, logging) recurses.
    return Effect.flatMap(this.depthChecked, (text) => {
      if (text.length === 0) return Effect.succeed(null)
      try {
        return Effect.succeed(JSON.parse(text) as unknown)
      } catch (error) {
        return Effect.fail(this.failure(error))
      }
    })
  }
  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    return Effect.map(this.buffer, (body) => body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer)
  }
  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: () => UrlParams.fromInput(new URLSearchParams(text)), catch: (error) => this.failure(error) }))
  }

  toJSON(): unknown {
    return this.inner.toJSON()
  }
  override toString(): string {
    return this.inner.toString()
  }
}

/**
 * Reads the body of a request from `withBufferedBody` and refuses it (`JsonTooDeep`)
 * if it nests deeper than `MAX_JSON_DEPTH`, whether or not its route reads it; the
 * verdict and the text are kept for the route's own read. Other requests pass.
 */
export const checkDepth = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void, HttpServerError.RequestError> =>
  request instanceof BufferedBodyRequest ? Effect.asVoid(request.depthChecked) : Effect.void

/** The request with a one-step body reader when it comes from `node:http`; otherwise unchanged. */
export const withBufferedBody = (
  request: HttpServerRequest.HttpServerRequest,
  maxBodyBytes: number
): HttpServerRequest.HttpServerRequest =>
  request.source instanceof IncomingMessage ? new BufferedBodyRequest(request, request.source, maxBodyBytes) : request
