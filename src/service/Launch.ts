/**
 * Running the service as a process: configured from the environment (see
 * ServiceConfig.ts), until SIGTERM or SIGINT, after which it drains and exits 0.
 * `main.ts` is `runMain()`; your own entry point with your own agents is
 * `runMain({ pipeline: MyPipeline })`.
 *
 * A configuration that does not validate stops start-up with one line on stderr
 * naming the variable (exit code 2); any other start-up failure (a port in use, an
 * unreadable data directory) with one line as well (exit code 1).
 *
 * `RINGMASTER_FLY_TOML=fly.toml` adds that file's `[env]` table below the
 * environment, to run locally with the settings Fly would give the machine.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as fs from "node:fs"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import * as Service from "./Service.js"
import { describeConfigError, fromEnv, provider, ServiceConfig } from "./ServiceConfig.js"

const EXIT_CONFIG = 2
const EXIT_START = 1

const fail = (line: string, code: number) =>
  Effect.sync(() => {
    process.stderr.write(`ringmaster: ${line}\n`)
    process.exitCode = code
  }).pipe(Effect.zipRight(Effect.fail("reported" as const)))

/**
 * fly.toml's `[env]`, parsed with `toml` (the parser @effect/cli already depends on);
 * loaded only when `RINGMASTER_FLY_TOML` is set, as it is needed only then.
 */
const flyTomlEnv = (file: string) =>
  Effect.tryPromise({
    try: async () => {
      const { default: toml } = await import("toml")
      const parsed = toml.parse(fs.readFileSync(file, "utf8")) as { env?: Record<string, unknown> }
      return parsed.env ?? {}
    },
    catch: (cause) => `RINGMASTER_FLY_TOML: cannot read the [env] table of ${file}: ${String(cause)}`
  })

/** The whole process as an Effect (for embedding in another runner). */
export const program = (options: Service.ServiceOptions = {}) =>
  Effect.gen(function*() {
    const tomlPath = process.env["RINGMASTER_FLY_TOML"]
    const flyEnv = tomlPath === undefined || tomlPath === ""
      ? undefined
      : yield* flyTomlEnv(tomlPath).pipe(Effect.catchAll((line) => fail(line, EXIT_CONFIG)))
    const configProvider = provider(flyEnv === undefined ? {} : { flyTomlEnv: flyEnv })
    const config = yield* fromEnv.pipe(
      Effect.withConfigProvider(configProvider),
      Effect.catchAll((error) => fail(describeConfigError(error), EXIT_CONFIG))
    )
    yield* Layer.launch(Service.layer(options).pipe(Layer.provide(Layer.succeed(ServiceConfig, config)))).pipe(
      Effect.withConfigProvider(configProvider),
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure) && failure.value === "reported") return Effect.failCause(cause)
        const reason = Cause.squash(cause)
        const message = reason instanceof Error ? reason.message : String((reason as { message?: unknown })?.message ?? reason)
        return fail(`cannot start: ${message.split("\n")[0]}`, EXIT_START)
      })
    )
  })

/** Runs the service until a signal; exit code 0 after a drain, 2 on a configuration error, 1 on another start-up failure. */
export const runMain = (options: Service.ServiceOptions = {}): void =>
  NodeRuntime.runMain(program(options), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
      onExit(typeof process.exitCode === "number" && process.exitCode !== 0 ? process.exitCode : EXIT_START)
    }
  })
