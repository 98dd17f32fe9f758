/**
 * The SQL ledger's write path. Commands queue up; one writer fiber takes up to
 * `maxBatchSize` of them (`GroupCommit.ts`), and in ONE transaction loads the rows
 * they touch, decides each command with the pure rules of `engine.ts`, and writes the
 * results. One fsync then commits many escrows. A refused command is decided in
 * memory and writes nothing; a batch whose transaction fails is retried, then split
 * into single-command transactions so one bad command cannot sink the others.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Exit, Option, Schedule, type Scope } from "effect"
import type { LedgerError, LedgerUnavailable } from "../../domain/errors.js"
import type { EscrowEvent } from "../../domain/Escrow.js"
import { SpanName, withSpanWhenTraced } from "../../observability/spans.js"
import type { Run } from "../dialect.js"
import { apply, type Command, type ResultOf, type WorkingSet } from "../engine.js"
import { EscrowTransitions } from "../Transitions.js"
import { type Row } from "../rows.js"
import * as GroupCommit from "./GroupCommit.js"
import { type LedgerStorage, unavailable } from "./storage.js"
import { inTransaction } from "./Transaction.js"

/** Bounds (TIGER_STYLE): queued commands, attempts per batch. */
const QUEUE_CAPACITY = 16_384
const BATCH_ATTEMPTS = 4

export interface BatchSteps {
  readonly load: (commands: ReadonlyArray<Command>, run: Run) => Effect.Effect<WorkingSet, SqlError>
  readonly write: (ws: WorkingSet, nowMs: number, run: Run) => Effect.Effect<void, SqlError>
}

export type Submit = <C extends Command>(command: C) => Effect.Effect<ResultOf<C>, LedgerError | LedgerUnavailable>

type Outcome = Either.Either<unknown, LedgerError>
type CommandExit = Exit.Exit<unknown, LedgerError | LedgerUnavailable>

/** Submits a command to the group commit; on shutdown the queued ones commit, later ones are refused. */
export const make = (
  storage: LedgerStorage,
  steps: BatchSteps
): Effect.Effect<Submit, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, dialect, safe, sql } = storage
    const transitions = yield* Effect.serviceOption(EscrowTransitions)
    /** The committed batch's transitions, told once (an attempt that rolled back told nothing). */
    const tell: ((events: ReadonlyArray<EscrowEvent>) => Effect.Effect<void>) | undefined = Option.isSome(transitions)
      ? transitions.value.committed
      : undefined

    /** One transaction for the whole batch; returns each command's outcome and the escrow events it wrote. */
    const runBatch = (commands: ReadonlyArray<Command>) =>
      inTransaction(sql, (run) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          const ws = yield* steps.load(commands, run)
          // A throw here is a broken invariant in the engine: the batch must not commit.
          const outcomes = commands.map((command): Outcome => apply(ws, command, config, nowMs))
          yield* steps.write(ws, nowMs, run)
          return { outcomes, events: ws.events }
        })).pipe(withSpanWhenTraced(SpanName.ledgerBatch, { attributes: { "ledger.commands": commands.length }, captureStackTrace: false }))

    const retryTransient = Schedule.exponential("2 millis").pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(BATCH_ATTEMPTS - 1)),
      Schedule.whileInput((error: SqlError) => dialect.isTransient(error.cause))
    )

    /** One batch, retried on transient errors; a batch that still fails is split so one bad command sinks only itself. */
    const commitCommands = (commands: ReadonlyArray<Command>): Effect.Effect<ReadonlyArray<CommandExit>> =>
      safe(runBatch(commands)).pipe(
        Effect.retry(retryTransient),
        Effect.exit,
        Effect.flatMap((exit): Effect.Effect<ReadonlyArray<CommandExit>> => {
          if (Exit.isSuccess(exit)) {
            const results = exit.value.outcomes.map((outcome) => Either.isRight(outcome) ? Exit.succeed(outcome.right) : Exit.fail(outcome.left))
            return tell === undefined || exit.value.events.length === 0 ? Effect.succeed(results) : Effect.as(tell(exit.value.events), results)
          }
          if (commands.length > 1) {
            // Isolate: a command that breaks the transaction must not take its batch-mates with it.
            return Effect.map(Effect.forEach(commands, (command) => commitCommands([command])), (outcomes) => outcomes.flat())
          }
          return Effect.logError("ledger command failed", commands[0]!._tag, exit.cause).pipe(
            Effect.as([Exit.fail(unavailable("the ledger could not apply the command", exit.cause))])
          )
        })
      )

    // Commands submitted within one event-loop turn go into one batch.
    const submitCommand = yield* GroupCommit.make({
      maxBatchSize: config.maxBatchSize,
      queueCapacity: QUEUE_CAPACITY,
      commit: commitCommands,
      closed: () => Exit.fail(unavailable("the ledger is shutting down"))
    })
    return <C extends Command>(command: C) => submitCommand(command) as Effect.Effect<ResultOf<C>, LedgerError | LedgerUnavailable>
  })

/** First start: funds the faucet treasury once, whichever instance of several starts first. */
export const fundTreasuryOnce = (storage: LedgerStorage, steps: BatchSteps): Effect.Effect<void> => {
  const { config, dialect, safe, sql } = storage
  return Effect.gen(function*() {
    const funded = yield* safe(sql<Row>`SELECT value FROM ledger_meta WHERE key = 'treasury_funded'`).pipe(Effect.orDie)
    if (funded.length > 0) return
    yield* inTransaction(sql, (run) =>
      Effect.gen(function*() {
        const nowMs = yield* Clock.currentTimeMillis
        // The meta row's primary key makes a concurrent first start of another instance fail here and retry.
        yield* run(sql`INSERT INTO ledger_meta ${sql.insert({ key: "treasury_funded", value: String(nowMs) })}`)
        const ws = yield* steps.load([], run)
        apply(ws, { _tag: "FundTreasury", amount: config.faucetTreasuryInitial }, config, nowMs)
        yield* steps.write(ws, nowMs, run)
      })).pipe(safe, Effect.catchAll((error) => dialect.isTransient(error.cause) ? Effect.void : Effect.die(error)))
  })
}
