/**
 * The two ways the MCP tools are reached: StreamableHTTP on the settlement service's own
 * HTTP server (same port as the REST API), and stdio for `ringmaster mcp`.
 *
 * HTTP is `McpServer.layerHttp` rebuilt from its public parts (`McpServer.layer` over
 * `RpcServer.makeProtocolWithHttpApp` and the JSON-RPC serialization) so that the
 * `/mcp` route can act before the MCP app runs: bound the body, fix what jsonRpc.ts
 * fixes, and put the caller's `Authorization` header into `currentBearer` (see
 * McpCredential.ts for why that is how the key reaches a tool handler).
 */
import * as McpServer from "@effect/ai/McpServer"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeSink from "@effect/platform-node/NodeSink"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { Context, Deferred, Effect, Layer, Logger, Option, type Scope, Sink, Stream } from "effect"
import { exceedsDepth, tooDeepMessage } from "../jsonBody.js"
import { inspect, normalizeLine } from "./jsonRpc.js"
import { clientAddress } from "../../settlement/RateLimits.js"
import { currentBearer, currentClientAddress, McpCredential, parseBearer } from "./McpCredential.js"

export interface ServerInfo {
  readonly name: string
  readonly version: string
}

export const defaultServerInfo: ServerInfo = { name: "ringmaster-settlement", version: "0.1.0" }

/** A JSON-RPC batch of tool calls is small; 256 KiB leaves room for long descriptions. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024

export interface HttpOptions {
  readonly maxBodyBytes?: number | undefined
  /** Take the client address from the proxy's headers (`SettlementConfig.trustProxy`). */
  readonly trustProxy?: boolean | undefined
  readonly serverInfo?: ServerInfo | undefined
}

/**
 * Wraps the MCP HTTP app. Before it runs: a body over the limit is a 413 (the app
 * reads the body once and caches it, so the bounded read here is the only read), one
 * nested deeper than `MAX_JSON_DEPTH` a 400 naming `body`, the body passes `inspect`
 * (jsonRpc.ts: answers malformed messages, fills in optional `arguments`), and the
 * request's bearer token goes into `currentBearer` for the tool handlers, with its
 * client address in `currentClientAddress`. A body of notifications only is answered
 * 202, as StreamableHTTP says.
 */
export const guardMcpApp = (
  app: HttpApp.Default<never, Scope.Scope>,
  maxBodyBytes: number,
  trustProxy = false
): HttpApp.Default<never, Scope.Scope> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "0")
    const tooLarge = HttpServerResponse.unsafeJson(
      { error: "payload_too_large", message: `the request body exceeds ${maxBodyBytes} bytes` },
      { status: 413, headers: { connection: "close" } }
    )
    if (Number.isFinite(declared) && declared > maxBodyBytes) return tooLarge
    const read = yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
      Effect.either
    )
    if (read._tag === "Left") return tooLarge
    // Before parsing: the MCP app's decoding recurses (jsonBody.ts).
    if (exceedsDepth(read.right)) {
      return HttpServerResponse.unsafeJson({ error: "invalid_request", message: tooDeepMessage, field: "body" }, { status: 400 })
    }
    const inspection = inspect(read.right)
    if (inspection._tag === "Answer") return HttpServerResponse.unsafeJson(inspection.body, { status: inspection.status })
    const forwarded = inspection.body === undefined ? request : withBody(request, inspection.body)
    const response = yield* app.pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, forwarded),
      Effect.locally(currentBearer, parseBearer(request.headers["authorization"])),
      Effect.locally(currentClientAddress, clientAddress(request, trustProxy))
    )
    return inspection.hasRequests ? response : HttpServerResponse.empty({ status: 202 })
  })

/** The request with a rewritten body; the MCP app reads only its headers and text. */
const withBody = (request: HttpServerRequest.HttpServerRequest, body: string) => {
  const headers = new globalThis.Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (name !== "content-length") headers.set(name, value)
  }
  return HttpServerRequest.fromWeb(new Request("http://localhost/mcp", { method: "POST", headers, body }))
}

/**
 * The MCP server over StreamableHTTP, not yet on a router: `server` is `McpServer` with
 * tool handlers reading the key of each HTTP request (add the tool layers on top), and
 * `app` the guarded HTTP app that `POST /mcp` runs (Mcp.ts routes it).
 */
export const makeHttp = (options: HttpOptions = {}): Effect.Effect<{
  readonly app: HttpApp.Default<never, Scope.Scope>
  readonly server: Layer.Layer<McpServer.McpServer | McpCredential>
}> =>
  Effect.map(RpcServer.makeProtocolWithHttpApp, ({ httpApp, protocol }) => ({
    app: guardMcpApp(httpApp, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, options.trustProxy ?? false),
    server: Layer.merge(
      McpServer.layer(options.serverInfo ?? defaultServerInfo).pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol))),
      McpCredential.layerHttp
    ) as Layer.Layer<McpServer.McpServer | McpCredential>
  })).pipe(Effect.provide(RpcSerialization.layerJsonRpc()))

/**
 * The end of a stdio session: the client closed our stdin and every request read
 * before that has been answered (stdout is flushed and closed).
 */
export class StdioSession extends Context.Tag("ringmaster/McpStdioSession")<StdioSession, {
  readonly finished: Effect.Effect<void>
}>() {}

/**
 * Appended to stdin's lines: the RPC layer's end-of-input message (`@effect/rpc/Eof` in
 * its JSON-RPC dialect). The server then answers what is in flight, ends the client
 * and closes stdout, instead of being cut off mid-answer when the process exits.
 */
const END_OF_INPUT = JSON.stringify({ jsonrpc: "2.0", method: "@effect/rpc/Eof" })

/**
 * The MCP server on this process's stdin/stdout (newline-delimited JSON-RPC). stdout
 * belongs to the protocol, so logs go to stderr. The key comes from `PF_API_KEY`.
 * Input lines get the optional `arguments` of `tools/call` filled in (jsonRpc.ts).
 * Lines are not length-bounded here: stdin is the pipe of the local client process
 * that spawned us, not a network peer.
 */
export const layerStdio = (
  serverInfo: ServerInfo = defaultServerInfo
): Layer.Layer<McpServer.McpServer | McpCredential | StdioSession> =>
  Layer.unwrapEffect(
    Effect.map(Deferred.make<void>(), (finished) =>
      Layer.mergeAll(
        McpServer.layerStdio({
          ...serverInfo,
          stdin: NodeStream.stdin.pipe(
            Stream.decodeText(),
            Stream.splitLines,
            Stream.map((line) => normalizeLine(line) + "\n"),
            Stream.concat(Stream.succeed(END_OF_INPUT + "\n")),
            Stream.encodeText
          ),
          stdout: NodeSink.stdout.pipe(Sink.ensuring(Deferred.succeed(finished, undefined)))
        }),
        McpCredential.layerConfig,
        Layer.succeed(StdioSession, { finished: Deferred.await(finished) })
      ))
  ).pipe(
    Layer.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false })))
  ) as Layer.Layer<McpServer.McpServer | McpCredential | StdioSession>
