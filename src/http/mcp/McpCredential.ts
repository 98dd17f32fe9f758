/**
 * Where an MCP tool call's API key comes from: the HTTP `Authorization` header of the
 * MCP request (StreamableHTTP), or `PF_API_KEY` for the stdio transport, which has no
 * headers. Never from a tool argument (register.ts refuses those).
 *
 * How the header reaches a tool handler. @effect/ai's `McpServer` hands a handler only
 * the decoded arguments: the HTTP headers are copied onto each RPC message, but the
 * `tools/call` handler ignores them. What does carry through is the fiber:
 * `RpcServer.makeProtocolWithHttpApp` feeds each decoded JSON-RPC message to the RPC
 * server synchronously from the HTTP request's fiber, and the RPC server runs the
 * handler in a new fiber started with that fiber's FiberRefs
 * (`fiberRefs: requestFiber.getFiberRefs()`), which is how log annotations and spans
 * follow a request too. So the `/mcp` route (transport.ts) sets `currentBearer` with
 * `Effect.locally` around the MCP app for that one request, and the handler reads it
 * through `McpCredential`. Each HTTP POST is its own RPC client, so two concurrent
 * requests with different keys cannot see each other's.
 * A Context service provided by the route would not do: the tool registration
 * re-provides the context it was built with over the request's, whereas FiberRefs are
 * left alone. (Tested in test/mcp/http.test.ts with several keys on one server.)
 *
 * The key is checked lazily, by the tool that needs it, so `initialize` and
 * `tools/list` work without one and an unauthorized call is an MCP tool error the
 * client can read (`{"error":"unauthorized"}`), not a transport failure.
 */
import { Config, Context, Effect, FiberRef, Layer, Option, Redacted } from "effect"
import { globalValue } from "effect/GlobalValue"

/** The bearer token of the HTTP request being served, if it carried one. */
export const currentBearer: FiberRef.FiberRef<Option.Option<Redacted.Redacted<string>>> = globalValue(
  Symbol.for("ringmaster/McpCredential/currentBearer"),
  () => FiberRef.unsafeMake<Option.Option<Redacted.Redacted<string>>>(Option.none())
)

/**
 * The client address of the HTTP request being served (`RateLimits.clientAddress`, so
 * `TRUST_PROXY` applies as on REST): the faucet's per-address limit counts MCP claims
 * with REST ones. Carried like `currentBearer`, for the same reason.
 */
export const currentClientAddress: FiberRef.FiberRef<string> = globalValue(
  Symbol.for("ringmaster/McpCredential/currentClientAddress"),
  () => FiberRef.unsafeMake<string>("unknown")
)

/** What the stdio transport counts its claims under: one local client process. */
export const STDIO_CLIENT_ADDRESS = "stdio"

/** Longest `Authorization` header value considered; anything longer is no key of ours. */
export const MAX_AUTHORIZATION_CHARS = 512

/**
 * `Bearer <token>` (scheme case-insensitive, as RFC 7235 says) → the token. Anything
 * else, including an empty or oversized value, is no credential at all.
 */
export const parseBearer = (header: string | undefined): Option.Option<Redacted.Redacted<string>> => {
  if (header === undefined || header.length > MAX_AUTHORIZATION_CHARS) return Option.none()
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header)
  return match === null ? Option.none() : Option.some(Redacted.make(match[1]!))
}

export interface McpCredentialShape {
  /** The API key presented with the tool call being handled, if any. */
  readonly bearer: Effect.Effect<Option.Option<Redacted.Redacted<string>>>
  /** Where the call comes from, for per-address limits. */
  readonly clientAddress: Effect.Effect<string>
}

export class McpCredential extends Context.Tag("ringmaster/McpCredential")<McpCredential, McpCredentialShape>() {
  /** StreamableHTTP: the key of the HTTP request carrying the call (see `currentBearer`). */
  static readonly layerHttp: Layer.Layer<McpCredential> = Layer.succeed(McpCredential, {
    bearer: FiberRef.get(currentBearer),
    clientAddress: FiberRef.get(currentClientAddress)
  })

  /** A fixed key: the stdio transport, where one process serves one agent. */
  static readonly layerStatic = (key: Option.Option<Redacted.Redacted<string>>): Layer.Layer<McpCredential> =>
    Layer.succeed(McpCredential, { bearer: Effect.succeed(key), clientAddress: Effect.succeed(STDIO_CLIENT_ADDRESS) })

  /** `PF_API_KEY` from the environment (absent: every tool call is unauthorized). */
  static readonly layerConfig: Layer.Layer<McpCredential> = Layer.unwrapEffect(
    Config.option(Config.redacted("PF_API_KEY")).pipe(
      Effect.map((key) => McpCredential.layerStatic(Option.filter(key, (k) => Redacted.value(k).length > 0))),
      Effect.orElseSucceed(() => McpCredential.layerStatic(Option.none()))
    )
  )
}
