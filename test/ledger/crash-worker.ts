/**
 * Child process for the crash test: hammers the SQLite ledger in DATA_DIR with
 * concurrent creates, releases (full and partial) and cancels until it is killed.
 * Prints "progress N" lines so the parent kills it mid-run, not before it starts.
 */
import { Effect } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"

const work = Effect.gen(function*() {
  const ledger = yield* Ledger
  const payer = yield* ledger.registerAgent({ name: "crash-payer" })
  const payee = yield* ledger.registerAgent({ name: "crash-payee", referralCode: payer.referralCode })
  yield* ledger.deposit(payer.wallet, Usdc.make("1000000"))
  let done = 0
  const one = (i: number) =>
    Effect.gen(function*() {
      const escrow = yield* ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1.000003"), description: `job ${i}` })
      if (i % 3 === 0) yield* ledger.cancelEscrow(escrow.id)
      else if (i % 3 === 1) yield* ledger.releaseEscrow(escrow.id)
      else {
        yield* ledger.releaseEscrow(escrow.id, { amount: Usdc.make("0.5") })
        yield* ledger.releaseEscrow(escrow.id)
      }
      if (++done % 200 === 0) console.log(`progress ${done}`)
    })
  let i = 0
  yield* Effect.all(Array.from({ length: 32 }, () => Effect.forever(Effect.suspend(() => one(i++)))), { concurrency: "unbounded" })
}).pipe(Effect.provide(SqlLedger.layerSqliteWith({ dataDir: process.env.DATA_DIR! })))

Effect.runPromise(work).catch((error) => {
  console.error(error)
  process.exit(1)
})
