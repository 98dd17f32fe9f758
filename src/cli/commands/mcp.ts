import { Command } from "@effect/cli"
import { Effect, Layer, Logger } from "effect"
import { mcpStdioFromEnv } from "../services.js"

/**
 * Resolves when the client closes our stdin. MCP's stdio transport ends a session by
 * closing the server's input; the server should then exit on its own rather than
 * wait for SIGTERM (and, under `npx`, leave a child holding the SQLite file).
 */
const stdinClosed = Effect.async<void>((resume) => {
  const done = () => resume(Effect.void)
  process.stdin.once("end", done)
  process.stdin.once("close", done)
  return Effect.sync(() => {
    process.stdin.off("end", done)
    process.stdin.off("close", done)
  })
})

/**
 * `ringmaster mcp`: the MCP tools on stdin/stdout, for MCP clients that spawn their
 * servers. stdout carries only JSON-RPC, so every log line goes to stderr.
 */
export const mcp = Command.make("mcp", {}, () =>
  Layer.launch(mcpStdioFromEnv).pipe(
    Effect.raceFirst(stdinClosed),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false })))
  )).pipe(
    Command.withDescription(
      "Serve the settlement MCP tools on stdio; the caller is the agent owning PF_API_KEY, data in DATA_DIR (default ./data)"
    )
  )
