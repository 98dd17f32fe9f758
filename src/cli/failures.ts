/**
 * How the `ringmaster` binary fails: one line, `ringmaster: <message>`, on stderr
 * and a non-zero exit. No stack, no cause tree: a person at a terminal reads the
 * reason, and a script reads the exit status.
 *
 * Argument errors are printed by @effect/cli while parsing, before any handler
 * runs; until then stderr is folded into that one line too. After the handler
 * starts, stderr is the command's own (`ledger verify` lists violations there).
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Console, Effect } from "effect"

/** The run failed and said why on stderr: the runtime only has to exit non-zero. */
export class CliFailed {
  readonly _tag = "CliFailed"
}

const PREFIX = "ringmaster: "

/** Any text as one `ringmaster: ...` line: lines joined, ANSI styling dropped. */
export const oneLine = (text: string): string =>
  PREFIX + text.replace(/\u001b\[[0-9;]*m/g, "").split("\n").map((line) => line.trim()).filter((line) => line !== "").join(" ")

const messageOf = (error: unknown): string => {
  if (error instanceof Error && error.message !== "") return error.message
  const tag = (error as { _tag?: unknown } | null)?._tag
  return typeof tag === "string" ? tag : String(error)
}

/** Runs `root` on `argv`, reporting any failure as one line (see the module comment). */
export const runOneLine = <Name extends string, R, E, A>(
  root: Command.Command<Name, R, E, A>,
  config: { readonly name: string; readonly version: string },
  argv: ReadonlyArray<string>
): Effect.Effect<void, CliFailed, R | CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const console = yield* Effect.console
    // Set once the chosen command's handler runs; a plain flag, read by the console below.
    let handlerStarted = false
    const parsing: Console.Console = {
      ...console,
      error: (...parts: ReadonlyArray<unknown>) =>
        handlerStarted ? console.error(...parts) : console.error(oneLine(parts.map(String).join(" ")))
    }
    const tree = Command.transformHandler(root, (handler) => Effect.zipRight(Effect.sync(() => (handlerStarted = true)), handler))
    return yield* Command.run(tree, config)(argv).pipe(
      Effect.withConsole(parsing),
      Effect.catchAllCause((cause): Effect.Effect<never, CliFailed> => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const error = Cause.squash(cause)
        // @effect/cli printed an argument error already, through the console above.
        const report = ValidationError.isValidationError(error) ? Effect.void : Console.error(oneLine(messageOf(error)))
        return Effect.zipRight(report, Effect.fail(new CliFailed()))
      })
    )
  })
