/**
 * `ringmaster ledger ...` alone, as a process, for the tests (the real binary's
 * `src/cli/main.ts` mounts the same `ledger` command in its tree).
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { ledger } from "../../src/cli/commands/ledger.js"
import { runOneLine } from "../../src/cli/failures.js"

const cli = Command.make("ringmaster").pipe(Command.withSubcommands([ledger]))

runOneLine(cli, { name: "ringmaster", version: "test" }, process.argv).pipe(
  Effect.provide(NodeContext.layer),
  (main) => NodeRuntime.runMain(main, { disableErrorReporting: true })
)
