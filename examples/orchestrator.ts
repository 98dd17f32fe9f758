/**
 * An orchestrator hires three specialists (a microservice mesh of agents: a data
 * fetcher, a reasoner and a writer), pays each through escrow, gets one task
 * refunded, and prints the ledger's account of it: who paid whom, the fees, and
 * its 15% referral income on the fees its sub-agents paid.
 *
 *   npx tsx examples/orchestrator.ts
 *
 * Embedded SQLite ledger in a temporary directory; no server, no key, no network.
 */
import { Console, Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Accounts, Agent, type Earnings, Orchestrator, type Payment, Usdc } from "ringmaster"
import { Ringmaster } from "ringmaster/sqlite"

// ---------------------------------------------------------------------------
// Three specialists. Deterministic: no model, no network.

const Query = Schema.Struct({ topic: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)) })
const Dataset = Schema.Struct({ topic: Schema.String, points: Schema.Array(Schema.Number) })

export const DataFetcher = Agent.make({
  name: "data-fetcher",
  input: Query,
  output: Dataset,
  price: Usdc.make("0.40"),
  run: ({ topic }) =>
    Effect.succeed({ topic, points: Array.from({ length: 6 }, (_, i) => ((topic.length * 7 + i * 13) % 17) + 1) })
})

export const Reasoner = Agent.make({
  name: "reasoner",
  input: Schema.Struct({ datasets: Schema.Array(Dataset) }),
  output: Schema.Struct({ findings: Schema.Array(Schema.String) }),
  price: Usdc.make("1.20"),
  run: ({ datasets }) =>
    Effect.succeed({
      findings: datasets.map((d) => {
        const mean = d.points.reduce((a, b) => a + b, 0) / d.points.length
        const trend = d.points[d.points.length - 1]! >= d.points[0]! ? "rising" : "falling"
        return `${d.topic}: mean ${mean.toFixed(2)}, ${trend}`
      })
    })
})

/** The writer's first draft is empty, which its output schema rejects: that task is refunded and retried. */
export const makeWriter = () => {
  let drafts = 0
  return Agent.make({
    name: "writer",
    input: Schema.Struct({ findings: Schema.Array(Schema.String) }),
    output: Schema.Struct({ report: Schema.String.pipe(Schema.minLength(1)) }),
    price: Usdc.make("0.80"),
    run: ({ findings }) =>
      Effect.sync(() => (++drafts === 1 ? { report: "" } : { report: `Market note. ${findings.join(". ")}.` }))
  })
}

// ---------------------------------------------------------------------------
// The job

export interface Summary {
  readonly report: string
  readonly payments: ReadonlyArray<Payment>
  readonly earnings: Earnings
  readonly balances: Readonly<Record<string, bigint>>
}

export const job = Effect.gen(function*() {
  const orchestrator = yield* Orchestrator
  const fetcher = yield* Orchestrator.spawn(DataFetcher)
  const reasoner = yield* Orchestrator.spawn(Reasoner)
  const writer = yield* Orchestrator.spawn(makeWriter())

  const datasets = yield* Effect.forEach(["eur-usd", "brent crude"], (topic) => Orchestrator.delegate(fetcher, { topic }), {
    concurrency: 2
  })
  const { findings } = yield* Orchestrator.delegate(reasoner, { datasets }, { timeoutMs: 5_000 })
  const { report } = yield* Orchestrator.delegate(writer, { findings }, { retries: 1 })

  const accounts = yield* Accounts
  const balances: Record<string, bigint> = {}
  for (const who of [orchestrator.identity, fetcher.identity, reasoner.identity, writer.identity]) {
    balances[who.name] = (yield* accounts.balance(who.wallet)).available
  }
  return { report, payments: yield* orchestrator.payments(), earnings: yield* orchestrator.earnings, balances } satisfies Summary
})

const usdc = (micros: bigint) => Usdc.format(micros).padStart(10)

export const print = (summary: Summary) =>
  Effect.gen(function*() {
    yield* Console.log(`\nReport: ${summary.report}\n`)
    yield* Console.log("Who paid whom (escrows, oldest first)")
    yield* Console.log("  payer         → payee          locked     paid       fee        refunded   outcome")
    for (const p of summary.payments) {
      yield* Console.log(
        `  ${p.payerName.padEnd(13)} → ${p.payeeName.padEnd(13)} ${usdc(p.locked)} ${usdc(p.released)} ${usdc(p.fee)} ${usdc(p.refunded)}   ${p.outcome._tag}`
      )
    }
    const e = summary.earnings
    yield* Console.log("\nThe orchestrator's earnings (from the ledger)")
    yield* Console.log(`  spent ${Usdc.format(e.spending)}  revenue ${Usdc.format(e.revenue)}  referral income ${Usdc.format(e.referralIncome)}  net ${Usdc.format(e.net)}`)
    for (const r of e.referred) yield* Console.log(`  referral income from ${r.agent.name.padEnd(13)} ${Usdc.format(r.earned)}`)
    yield* Console.log("\nBalances")
    for (const [name, available] of Object.entries(summary.balances)) yield* Console.log(`  ${name.padEnd(13)} ${usdc(available)}`)
  })

/** The whole example on a ledger in `dataDir`: the orchestrator starts with 10 USDC. */
export const run = (dataDir: string) =>
  job.pipe(
    Effect.provide(
      Ringmaster.local({ dataDir, synchronous: "NORMAL", deposit: Usdc.make("10") })
    )
  )

export const main = Effect.acquireUseRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-orchestrator-"))),
  (dir) => Effect.tap(run(dir), print),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
