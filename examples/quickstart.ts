/**
 * The library in one screen: an embedded SQLite ledger in ./data, two agents, one
 * paid task released and one failed task refunded, balances printed from the ledger.
 *
 *   npx tsx examples/quickstart.ts
 */
import { Effect } from "effect"
import { Escrow, Ledger, Usdc } from "ringmaster"
import { EscrowSqlite } from "ringmaster/sqlite"

export const quickstart = Effect.gen(function*() {
  const ledger = yield* Ledger
  const orchestrator = yield* ledger.registerAgent({ name: "orchestrator" })
  const writer = yield* ledger.registerAgent({ name: "writer", referralCode: orchestrator.referralCode })
  yield* ledger.claimFaucet({ wallet: orchestrator.wallet, agentName: "orchestrator" })
  yield* ledger.deposit(orchestrator.wallet, Usdc.make("100"))

  const terms = (description: string) => ({
    payer: orchestrator.wallet,
    payee: writer.wallet,
    amount: Usdc.make("10"),
    description,
    metadata: { fly_region: ledger.config.region }
  })
  // Paid: the scope succeeds, so the escrow is released (writer nets 9.90, 0.015 referral back to the orchestrator).
  yield* Escrow.use(terms("write a haiku"), () => Effect.succeed("an old silent pond"))
  // Failed: the scope fails, so the escrow is cancelled and the 10 USDC come back.
  const failed = yield* Effect.either(Escrow.use(terms("write an epic"), () => Effect.fail("writer gave up")))

  const [payer, payee, report] = yield* Effect.all([
    ledger.balance(orchestrator.wallet),
    ledger.balance(writer.wallet),
    ledger.verify
  ])
  return { orchestrator: payer, writer: payee, failed: failed._tag === "Left", violations: report.violations.length }
})

const main = Effect.gen(function*() {
  const result = yield* quickstart
  yield* Effect.log(
    `orchestrator ${Usdc.format(result.orchestrator.available)} USDC, writer ${Usdc.format(result.writer.available)} USDC, ` +
      `failed task refunded: ${result.failed}, invariant violations: ${result.violations}`
  )
}).pipe(Effect.provide(EscrowSqlite.layer({ dataDir: process.env.DATA_DIR ?? "./data" })))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main)
