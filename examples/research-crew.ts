/**
 * A research crew under a budget: an orchestrator with 3 USDC for the whole run and
 * at most 1 USDC per task hires a searcher per topic, an analyst, and a writer. The
 * writer would break the run's budget, so that task is refused before anything is
 * locked, and a cheaper summarizer writes the brief instead.
 *
 *   npx tsx examples/research-crew.ts
 *
 * In process memory (`Ringmaster.memory()`): no file, no server, no key.
 */
import { Console, Effect, Schema } from "effect"
import { Agent, type BudgetExceeded, Orchestrator, type Payment, Ringmaster, Usdc } from "ringmaster"

const Topic = Schema.Struct({ topic: Schema.String.pipe(Schema.minLength(1)) })
const Notes = Schema.Struct({ topic: Schema.String, notes: Schema.Array(Schema.String) })
const Findings = Schema.Struct({ findings: Schema.Array(Schema.String) })
const Brief = Schema.Struct({ brief: Schema.String.pipe(Schema.minLength(1)) })

export const prices = {
  searcher: Usdc.make("0.40"),
  analyst: Usdc.make("0.90"),
  writer: Usdc.make("1.00"),
  summarizer: Usdc.make("0.45")
} as const

export const topics = ["solid-state batteries", "sodium-ion cells", "grid storage"] as const

const Searcher = Agent.make({
  name: "searcher",
  input: Topic,
  output: Notes,
  price: prices.searcher,
  run: ({ topic }) => Effect.succeed({ topic, notes: [`${topic}: 3 papers`, `${topic}: 1 patent`] })
})

const Analyst = Agent.make({
  name: "analyst",
  input: Schema.Struct({ notes: Schema.Array(Notes) }),
  output: Findings,
  price: prices.analyst,
  run: ({ notes }) => Effect.succeed({ findings: notes.map((n) => `${n.topic} is moving (${n.notes.length} sources)`) })
})

const Writer = Agent.make({
  name: "writer",
  input: Findings,
  output: Brief,
  price: prices.writer,
  run: ({ findings }) => Effect.succeed({ brief: `A long-form brief. ${findings.join(". ")}.` })
})

const Summarizer = Agent.make({
  name: "summarizer",
  input: Findings,
  output: Brief,
  price: prices.summarizer,
  run: ({ findings }) => Effect.succeed({ brief: findings.join("; ") })
})

export interface CrewReport {
  readonly brief: string
  /** Why the writer was not hired. */
  readonly refused: BudgetExceeded | undefined
  readonly payments: ReadonlyArray<Payment>
  readonly spentMicros: bigint
  readonly balanceMicros: bigint
}

export const research = Effect.gen(function*() {
  const searcher = yield* Orchestrator.spawn(Searcher)
  const analyst = yield* Orchestrator.spawn(Analyst)
  const writer = yield* Orchestrator.spawn(Writer)
  const summarizer = yield* Orchestrator.spawn(Summarizer)

  const notes = yield* Effect.forEach(topics, (topic) => Orchestrator.delegate(searcher, { topic }), { concurrency: 3 })
  const findings = yield* Orchestrator.delegate(analyst, { notes })
  // 1.20 + 0.90 spent, 1.00 more would pass the run's 3 USDC: refused before any lock.
  const { brief, refused } = yield* Orchestrator.delegate(writer, findings).pipe(
    Effect.map(({ brief }) => ({ brief, refused: undefined })),
    Effect.catchTag("BudgetExceeded", (refused) =>
      Effect.map(Orchestrator.delegate(summarizer, findings), ({ brief }) => ({ brief, refused })))
  )
  const orchestrator = yield* Orchestrator
  return {
    brief,
    refused,
    payments: yield* orchestrator.payments(),
    spentMicros: (yield* orchestrator.spent).paidMicros,
    balanceMicros: (yield* orchestrator.balance).available
  } satisfies CrewReport
})

export const crew = Ringmaster.memory({
  name: "research-lead",
  deposit: Usdc.make("5"),
  budget: { perTask: Usdc.make("1"), perRun: Usdc.make("3") }
})

export const main = research.pipe(
  Effect.tap((report) =>
    Effect.gen(function*() {
      yield* Console.log(`Brief: ${report.brief}`)
      if (report.refused !== undefined) yield* Console.log(`Writer not hired: ${report.refused.message}`)
      for (const p of report.payments) yield* Console.log(`  ${p.payeeName.padEnd(11)} ${Usdc.format(p.released)} USDC ${p.outcome._tag}`)
      yield* Console.log(`Spent ${Usdc.format(report.spentMicros)} of 3 USDC; balance ${Usdc.format(report.balanceMicros)} USDC`)
    })
  ),
  Effect.provide(crew)
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
