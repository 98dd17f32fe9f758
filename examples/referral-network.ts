/**
 * A chain of orchestrators: a platform hires a regional lead, which hires a
 * specialist, which hires a tool. Each one spawns (and so refers) the next, pays
 * it through escrow from its own wallet, and earns 15% of the fees on the escrows
 * of the agent it referred, on both sides: when that agent is paid, and when it
 * pays someone else.
 *
 *   npx tsx examples/referral-network.ts
 *
 * Embedded SQLite ledger in a temporary directory; no server, no key, no network.
 */
import { Console, Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Accounts, Agent, type Earnings, Orchestrator, type OrchestratorShape, Usdc } from "ringmaster"
import { Ringmaster } from "ringmaster/sqlite"

export const jobs = 3
export const prices = { lead: Usdc.make("2.00"), specialist: Usdc.make("0.90"), tool: Usdc.make("0.35") } as const

const Question = Schema.Struct({ question: Schema.String.pipe(Schema.minLength(1)) })
const Answer = Schema.Struct({ answer: Schema.String })

export const Tool = Agent.make({
  name: "tool",
  input: Question,
  output: Answer,
  price: prices.tool,
  run: ({ question }) => Effect.succeed({ answer: `${question.length} characters` })
})

/** Hires the tool with its own wallet (its faucet balance pays the first job). */
export const Specialist = Agent.make({
  name: "specialist",
  input: Question,
  output: Answer,
  price: prices.specialist,
  run: ({ question }) =>
    Effect.map(Orchestrator.hire(Tool, { question }), ({ answer }) => ({ answer: `measured: ${answer}` }))
})

export const RegionalLead = Agent.make({
  name: "regional-lead",
  input: Question,
  output: Answer,
  price: prices.lead,
  run: ({ question }) =>
    Effect.map(
      Orchestrator.hire(Specialist, { question }, { spawn: { faucet: true } }),
      ({ answer }) => ({ answer: `lead says ${answer}` })
    )
})

export interface Level {
  readonly name: string
  readonly referrer: string | null
  /** What the level started with: a deposit or the faucet. */
  readonly funded: bigint
  readonly balance: bigint
  readonly earnings: Earnings
}

const PLATFORM_DEPOSIT = Usdc.make("50")

export const network = Effect.gen(function*() {
  const platform = yield* Orchestrator
  const lead = yield* Orchestrator.spawn(RegionalLead, { faucet: true })
  for (let i = 0; i < jobs; i++) yield* Orchestrator.delegate(lead, { question: `question number ${i + 1}` })

  // Walk down the chain: each sub-agent's own orchestrator spawned the next level.
  const chain: Array<OrchestratorShape> = [platform]
  let current: OrchestratorShape | undefined = lead.orchestrator
  while (current !== undefined && chain.length < 8) {
    chain.push(current)
    const [next] = yield* current.handles
    current = next?.orchestrator
  }
  const accounts = yield* Accounts
  const names = new Map(chain.map((o) => [o.identity.wallet as string, o.identity.name]))
  return yield* Effect.forEach(chain, (o, i) =>
    Effect.gen(function*() {
      const balance = yield* accounts.balance(o.identity.wallet)
      return {
        name: o.identity.name,
        referrer: o.identity.referrer === null ? null : names.get(o.identity.referrer) ?? o.identity.referrer,
        funded: i === 0 ? PLATFORM_DEPOSIT : i < 3 ? Usdc.make("1") : 0n,
        balance: balance.available,
        earnings: yield* o.earnings
      } satisfies Level
    }))
})

export const run = (dataDir: string) =>
  network.pipe(
    Effect.provide(
      Ringmaster.local({ dataDir, synchronous: "NORMAL", name: "platform", deposit: PLATFORM_DEPOSIT })
    )
  )

export const print = (levels: ReadonlyArray<Level>) =>
  Effect.gen(function*() {
    yield* Console.log(`\n${jobs} jobs down the chain platform → regional-lead → specialist → tool\n`)
    yield* Console.log("  agent           referred by      referral income   spent      revenue    net         balance")
    for (const l of levels) {
      const e = l.earnings
      yield* Console.log(
        `  ${l.name.padEnd(15)} ${(l.referrer ?? "-").padEnd(15)}  ${Usdc.format(e.referralIncome).padStart(10)}     ` +
          `${Usdc.format(e.spending).padStart(9)}  ${Usdc.format(e.revenue).padStart(9)}  ${Usdc.format(e.net).padStart(10)}  ${Usdc.format(l.balance).padStart(10)}`
      )
    }
  })

export const main = Effect.acquireUseRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-referrals-"))),
  (dir) => Effect.tap(run(dir), print),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
