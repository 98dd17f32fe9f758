/**
 * The `ringmaster` command tree. Each subcommand is one `Command` in ./commands;
 * adding one (`ledger verify`, `ledger export`, `serve`) is one file and one entry in
 * `subcommands`.
 */
import * as Command from "@effect/cli/Command"
import { ledger } from "./commands/ledger.js"
import { mcp } from "./commands/mcp.js"
import { settlement } from "./commands/settlement.js"
import { runOneLine } from "./failures.js"
import { VERSION } from "./version.js"

export { VERSION }

const subcommands = [settlement, mcp, ledger] as const

export const ringmaster = Command.make("ringmaster").pipe(
  Command.withDescription("Orchestrator agents that hire and pay sub-agents through escrow"),
  Command.withSubcommands(subcommands)
)

/** Parses `argv` (as `process.argv`) and runs the chosen command; a failure is one `ringmaster: <message>` line on stderr. */
export const run = (argv: ReadonlyArray<string>) => runOneLine(ringmaster, { name: "ringmaster", version: VERSION }, argv)
