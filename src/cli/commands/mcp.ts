import * as Command from "@effect/cli/Command"
import { Effect, Layer, Logger } from "effect"

/** Resolves when the client closes our stdin. */
const stdinClosed = Effect.async<void>((resume) => {
  const done = () => resume(Effect.void)
  process.stdin.once("end", done)
  process.stdin.once("close", done)
  return Effect.sync(() => {
    process.stdin.off("end", done)
    process.stdin.off("close", done)
  })
})

/** After stdin closes, requests still running get this long to be answered. */
const DRAIN_TIMEOUT = "10 seconds"

/**
 * `ringmaster mcp`: the MCP tools on stdin/stdout, for MCP clients that spawn their
 * servers. stdout carries only JSON-RPC, so every log line goes to stderr.
 *
 * MCP's stdio transport ends a session by closing the server's input. The process
 * then exits on its own once what it read has been answered (`StdioSession.finished`),
 * or `DRAIN_TIMEOUT` after stdin closed at the latest, rather than waiting for SIGTERM
 * (under `npx`, a SIGKILL would leave the node child holding the SQLite file).
 */
export const mcp = Command.make("mcp", {}, () =>
  Effect.gen(function*() {
    // The server's modules load when the command runs, so `ringmaster --version` and `--help` stay fast.
    const [{ mcpStdioFromEnv }, { StdioSession }] = yield* Effect.promise(() =>
      Promise.all([import("../services.js"), import("../../http/mcp/transport.js")])
    )
    const context = yield* Layer.build(mcpStdioFromEnv)
    const session = yield* Effect.provide(StdioSession, context)
    yield* Effect.raceFirst(session.finished, Effect.zipRight(stdinClosed, Effect.sleep(DRAIN_TIMEOUT)))
  }).pipe(
    Effect.scoped,
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false })))
  )).pipe(
    Command.withDescription(
      "Serve the settlement MCP tools on stdio; the caller is the agent owning PF_API_KEY, data in DATA_DIR (default ./data)"
    )
  )
