import { Command } from "@effect/cli"
import { Effect, Layer, Logger } from "effect"
import { mcpStdioFromEnv } from "../services.js"

/**
 * `ringmaster mcp`: the MCP tools on stdin/stdout, for MCP clients that spawn their
 * servers. stdout carries only JSON-RPC, so every log line goes to stderr.
 */
export const mcp = Command.make("mcp", {}, () =>
  Layer.launch(mcpStdioFromEnv).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false })))
  )).pipe(
    Command.withDescription(
      "Serve the settlement MCP tools on stdio; the caller is the agent owning PF_API_KEY, data in DATA_DIR (default ./data)"
    )
  )
