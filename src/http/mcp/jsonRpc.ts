/**
 * A look at an MCP POST body before @effect/ai's `McpServer` gets it, to cover three
 * gaps of that library (0.37) that real clients hit:
 *
 * 1. `tools/call` without `arguments`: MCP makes `arguments` optional, and clients
 *    omit it for tools that take none (`referral_stats`); the library's schema requires
 *    it and answers with a defect. We add `arguments: {}`.
 * 2. Malformed messages: unparseable JSON comes back from the library as a defect with
 *    a made-up id, and a `tools/call` whose `name`/`arguments` have the wrong type as
 *    error code 0. We answer them ourselves with the JSON-RPC codes (-32700 parse
 *    error, -32600 invalid request, -32602 invalid params).
 * 3. A body of notifications only: StreamableHTTP says 202 Accepted with no body; the
 *    library answers 200 with an empty `application/json` body, which strict clients
 *    fail to parse. `hasRequests` lets the route answer 202.
 *
 * Pure, so it is tested on its own; the HTTP route applies all of it, the stdio
 * transport only the first (`normalizeLine`): there the library answers malformed
 * lines itself, with its own codes, on the one stdout it owns.
 */
import { Predicate } from "effect"

/** JSON-RPC batches were dropped from MCP in 2025-06-18; older clients send small ones. */
export const MAX_BATCH_MESSAGES = 64

export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const INVALID_PARAMS = -32602

export type Inspection =
  /** Answer with this JSON-RPC body and HTTP status; the MCP server never sees the request. */
  | { readonly _tag: "Answer"; readonly status: number; readonly body: unknown }
  /** Hand the request on: `body` is the rewritten text, or undefined when the original stands. */
  | { readonly _tag: "Forward"; readonly body: string | undefined; readonly hasRequests: boolean }

type Id = string | number | null

const errorResponse = (id: Id, code: number, message: string) => ({ jsonrpc: "2.0", id, error: { code, message } })

const idOf = (message: Record<string, unknown>): Id =>
  typeof message["id"] === "string" || typeof message["id"] === "number" ? message["id"] : null

const isRequest = (message: unknown): message is Record<string, unknown> =>
  Predicate.isRecord(message) && typeof message["method"] === "string" && message["id"] !== undefined

/** Why a message cannot be handed on, if it cannot. */
const problemOf = (message: unknown): { readonly code: number; readonly message: string } | undefined => {
  if (!Predicate.isRecord(message) || message["jsonrpc"] !== "2.0") {
    return { code: INVALID_REQUEST, message: "Invalid request: expected a JSON-RPC 2.0 message object" }
  }
  if (message["method"] !== "tools/call") return undefined
  const params = message["params"]
  if (!Predicate.isRecord(params) || typeof params["name"] !== "string") {
    return { code: INVALID_PARAMS, message: "Invalid params: tools/call needs params.name, the tool's name" }
  }
  const args = params["arguments"]
  if (args !== undefined && (!Predicate.isRecord(args) || Array.isArray(args))) {
    return { code: INVALID_PARAMS, message: "Invalid params: params.arguments must be an object of the tool's arguments" }
  }
  return undefined
}

export const inspect = (text: string): Inspection => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { _tag: "Answer", status: 400, body: errorResponse(null, PARSE_ERROR, "Parse error: the body is not valid JSON") }
  }
  const batch = Array.isArray(parsed)
  const messages: ReadonlyArray<unknown> = batch ? (parsed as ReadonlyArray<unknown>) : [parsed]
  if (messages.length === 0 || messages.length > MAX_BATCH_MESSAGES) {
    return {
      _tag: "Answer",
      status: 400,
      body: errorResponse(null, INVALID_REQUEST, `Invalid request: send 1 to ${MAX_BATCH_MESSAGES} messages`)
    }
  }
  const problems = messages.map(problemOf)
  if (problems.some((p) => p !== undefined)) {
    // A batch is answered as a whole: every request in it gets an error, none is run,
    // so no valid request in it is silently dropped or half-applied.
    const answers = messages.flatMap((message, i) => {
      const problem = problems[i] ?? { code: INVALID_REQUEST, message: "Invalid request: its batch holds an invalid message" }
      return Predicate.isRecord(message) && message["id"] === undefined && problems[i] === undefined
        ? []
        : [errorResponse(Predicate.isRecord(message) ? idOf(message) : null, problem.code, problem.message)]
    })
    return { _tag: "Answer", status: 200, body: batch ? answers : answers[0] }
  }
  let rewritten = false
  for (const message of messages) {
    const record = message as Record<string, unknown>
    if (record["method"] === "tools/call") {
      const params = record["params"] as Record<string, unknown>
      if (params["arguments"] === undefined) {
        params["arguments"] = {}
        rewritten = true
      }
    }
  }
  return {
    _tag: "Forward",
    body: rewritten ? JSON.stringify(parsed) : undefined,
    hasRequests: messages.some(isRequest)
  }
}

/** One NDJSON line from a stdio client, with `arguments` filled in where it was left out; otherwise as it came. */
export const normalizeLine = (line: string): string => {
  const inspection = inspect(line)
  return inspection._tag === "Forward" && inspection.body !== undefined ? inspection.body : line
}
