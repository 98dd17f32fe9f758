/** Runs the `ringmaster` command tree on `process.argv` (loaded by ./main.ts). */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { run } from "./Cli.js"

// The failure was reported on stderr as one line; the runtime only sets the exit status.
run(process.argv).pipe(Effect.provide(NodeContext.layer), (main) => NodeRuntime.runMain(main, { disableErrorReporting: true }))
