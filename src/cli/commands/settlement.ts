import * as Command from "@effect/cli/Command"
import { Effect, Layer } from "effect"

/** `ringmaster settlement`: the settlement service alone (REST + MCP over HTTP), until interrupted. */
export const settlement = Command.make("settlement", {}, () =>
  // The server's modules load when the command runs, so `ringmaster --version` and `--help` stay fast.
  Effect.flatMap(Effect.promise(() => import("../services.js")), (services) => Layer.launch(services.settlementFromEnv))).pipe(
  Command.withDescription(
    "Run the settlement service: REST API and MCP (POST /mcp) on PORT (default 8080), SQLite ledger in DATA_DIR (default ./data)"
  )
)
