import * as Command from "@effect/cli/Command"
import { Layer } from "effect"
import { settlementFromEnv } from "../services.js"

/** `ringmaster settlement`: the settlement service alone (REST + MCP over HTTP), until interrupted. */
export const settlement = Command.make("settlement", {}, () => Layer.launch(settlementFromEnv)).pipe(
  Command.withDescription(
    "Run the settlement service: REST API and MCP (POST /mcp) on PORT (default 8080), SQLite ledger in DATA_DIR (default ./data)"
  )
)
