/**
 * Registers an @effect/ai `Toolkit` with the `McpServer`, like `McpServer.toolkit`, but
 * with the result shapes this service promises its MCP clients:
 *
 * - success: the tool's encoded success value (the REST route's JSON record) as
 *   `structuredContent` and as JSON text;
 * - a refused call: `isError: true` with the REST error body `{error, message, field?, details?}`;
 * - bad arguments: `isError: true` with the body REST gives a body that does not
 *   decode, `{error: "invalid_request", field, message}` naming the argument (the stock
 *   registration returns the whole AiError, the arguments echoed back);
 * - arguments that look like credentials: refused before anything runs, so an API key
 *   can never authorize a call from inside the arguments;
 * - a defect: logged here, reported as `{error: "internal_error"}`, never a dropped call;
 *   an interruption (the client cancelled) stays an interruption.
 *
 * An unknown tool name stays a JSON-RPC invalid-params error (the server's own check).
 */
import * as AiError from "@effect/ai/AiError"
import * as McpSchema from "@effect/ai/McpSchema"
import * as McpServer from "@effect/ai/McpServer"
import * as Tool from "@effect/ai/Tool"
import type * as Toolkit from "@effect/ai/Toolkit"
import { Cause, Context, Effect, JSONSchema, Layer, Option, ParseResult, Predicate, Schema, SchemaAST as AST } from "effect"

/**
 * The error body shared with the REST API (`bodyOf(toWire(e))` in ../errors.ts): a
 * machine-readable code, a sentence naming the field, and the facts behind it.
 */
export const ToolFailure = Schema.Struct({
  error: Schema.String,
  message: Schema.String,
  field: Schema.optional(Schema.String),
  details: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})
export type ToolFailure = typeof ToolFailure.Type

/**
 * Argument names that would carry a credential. Authorization is the HTTP header's job
 * (or `PF_API_KEY` on stdio); a key in the arguments is refused, not ignored, so the
 * caller learns it is in the wrong place.
 */
const CREDENTIAL_ARGUMENT = /^(api[_-]?key|apikey|key|pf[_-]?api[_-]?key|authorization|auth|bearer|token|access[_-]?token|secret|password)$/i

/** More arguments than any tool takes is not a tool call we need to look at closely. */
const MAX_ARGUMENTS = 32

const isToolFailure = Schema.is(ToolFailure)

const failure = (body: ToolFailure): McpSchema.CallToolResult =>
  new McpSchema.CallToolResult({
    isError: true,
    structuredContent: body,
    content: [{ type: "text", text: JSON.stringify(body) }]
  })

const success = (encoded: unknown): McpSchema.CallToolResult =>
  new McpSchema.CallToolResult({
    isError: false,
    structuredContent: Predicate.isObject(encoded) ? encoded : undefined,
    content: [{ type: "text", text: JSON.stringify(encoded ?? null) }]
  })

/**
 * The first problem with the arguments, as REST reports a body that does not decode:
 * `{error: "invalid_request", field: "amount_usdc", message: "amount_usdc: invalid amount ..."}`.
 */
export const invalidArguments = (error: ParseResult.ParseError): ToolFailure => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined || issue.path.length === 0) {
    return { error: "invalid_request", message: `arguments: ${issue?.message ?? "they do not match the tool's input schema"}` }
  }
  const field = issue.path.map(String).join(".")
  return { error: "invalid_request", field, message: `${field}: ${issue.message}` }
}

const argumentProblem = (payload: unknown): ToolFailure | undefined => {
  if (!Predicate.isRecord(payload)) return { error: "invalid_request", message: "arguments: expected an object" }
  const names = Object.keys(payload)
  if (names.length > MAX_ARGUMENTS) {
    return { error: "invalid_request", message: `arguments: at most ${MAX_ARGUMENTS} are accepted` }
  }
  const credential = names.find((name) => CREDENTIAL_ARGUMENT.test(name))
  if (credential !== undefined) {
    return {
      error: "invalid_request",
      field: credential,
      message: `${credential}: API keys are never accepted as tool arguments; send "Authorization: Bearer <key>" with the MCP request (or set PF_API_KEY for stdio)`
    }
  }
  return undefined
}

/** The MCP input schema of a tool: JSON Schema of its parameters' encoded side. */
export const inputJsonSchema = (ast: AST.AST): JSONSchema.JsonSchema7 => {
  // An empty struct's JSON Schema is "any object or array"; MCP requires `type: "object"`.
  if (AST.getPropertySignatures(ast).length === 0) {
    return { type: "object", properties: {}, required: [], additionalProperties: false }
  }
  const $defs: Record<string, JSONSchema.JsonSchema7> = {}
  const schema = JSONSchema.fromAST(ast, { definitions: $defs, topLevelReferenceStrategy: "skip" })
  return Object.keys($defs).length === 0 ? schema : ({ ...schema, $defs } as unknown as JSONSchema.JsonSchema7)
}

export const registerToolkit = Effect.fnUntraced(function*<Tools extends Record<string, Tool.Any>>(
  toolkit: Toolkit.Toolkit<Tools>
) {
  const registry = yield* McpServer.McpServer
  const built = yield* (toolkit as unknown as Effect.Effect<Toolkit.WithHandler<Tools>>)
  const context = yield* Effect.context<never>()
  for (const tool of Object.values(built.tools) as ReadonlyArray<Tool.Any>) {
    const mcpTool = new McpSchema.Tool({
      name: tool.name,
      description: tool.description,
      inputSchema: inputJsonSchema(tool.parametersSchema.ast),
      annotations: new McpSchema.ToolAnnotations({
        ...Option.match(Context.getOption(tool.annotations, Tool.Title), {
          onNone: () => ({}),
          onSome: (title) => ({ title })
        }),
        readOnlyHint: Context.get(tool.annotations, Tool.Readonly),
        destructiveHint: Context.get(tool.annotations, Tool.Destructive),
        idempotentHint: Context.get(tool.annotations, Tool.Idempotent),
        openWorldHint: Context.get(tool.annotations, Tool.OpenWorld)
      })
    })
    yield* registry.addTool({
      tool: mcpTool,
      handle: (payload: unknown) => {
        const problem = argumentProblem(payload)
        if (problem !== undefined) return Effect.succeed(failure(problem))
        return built.handle(tool.name as keyof Tools, payload as never).pipe(
          Effect.provide(context),
          Effect.map((result) => success(result.encodedResult)),
          Effect.catchAllCause((cause) => {
            if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
            const error = Cause.failureOption(cause)
            if (Option.isSome(error)) {
              const e: unknown = error.value
              if (e instanceof AiError.MalformedOutput) {
                // Toolkit.handle raises MalformedOutput only when the arguments do not decode.
                return Effect.succeed(
                  failure(ParseResult.isParseError(e.cause) ? invalidArguments(e.cause) : { error: "invalid_request", message: "arguments: they do not match the tool's input schema" })
                )
              }
              if (isToolFailure(e) && !AiError.isAiError(e)) return Effect.succeed(failure(e))
            }
            return Effect.logError(`MCP tool ${tool.name} failed`, cause).pipe(
              Effect.as(failure({ error: "internal_error", message: "unexpected failure; nothing is known to have changed" }))
            )
          })
        )
      }
    })
  }
})

/** `McpServer.toolkit` with the result shapes above: merge it with a transport layer. */
export const toolkitLayer = <Tools extends Record<string, Tool.Any>>(
  toolkit: Toolkit.Toolkit<Tools>
): Layer.Layer<never, never, McpServer.McpServer | Tool.HandlersFor<Tools> | Tool.Requirements<Tools[keyof Tools]>> =>
  Layer.effectDiscard(registerToolkit(toolkit)) as never
