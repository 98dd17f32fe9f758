/**
 * Shared pieces of the orchestrator tests: demo agents, and the ledgers every
 * suite runs against (the `EscrowTest` mock and the embedded SQLite ledger).
 */
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Accounts } from "../../src/agents/Accounts.js"
import * as Agent from "../../src/agents/Agent.js"
import { Orchestrator, type OrchestratorOptions } from "../../src/agents/Orchestrator.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import { fromLedger } from "../../src/escrow/EscrowLocal.js"
import { memoryJournal } from "../../src/ledger/SettlementJournal.js"
import { Ledger, type LedgerConfigShape } from "../../src/ledger/Ledger.js"

export interface Backend {
  readonly name: string
  /** A fresh, empty ledger and the `Escrow` port over it. */
  readonly layer: (config?: Partial<LedgerConfigShape>) => Layer.Layer<Escrow | Ledger>
}

/** `Escrow` straight over the provided `Ledger`, independent of which layer the escrow module names it. */
export const escrowOverLedger: Layer.Layer<Escrow, never, Ledger> = Layer.effect(
  Escrow,
  Effect.gen(function*() {
    return fromLedger(yield* Ledger, yield* memoryJournal)
  })
)

/** A temporary directory removed when the layer's scope closes. */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const sqliteBackend = (): Backend | undefined => {
  const file = path.resolve(import.meta.dirname, "../../src/ledger/SqlLedger.ts")
  if (!fs.existsSync(file)) return undefined
  return {
    name: "SQLite ledger",
    layer: (config = {}) =>
      Layer.unwrapScoped(
        Effect.gen(function*() {
          const SqlLedger = yield* Effect.promise(() => import("../../src/ledger/SqlLedger.js"))
          const dir = yield* tempDir("ringmaster-agents-")
          return escrowOverLedger.pipe(
            Layer.provideMerge(SqlLedger.layerSqliteWith({ filename: path.join(dir, "ledger.db") }, config))
          )
        })
      ) as Layer.Layer<Escrow | Ledger>
  }
}

export const backends: ReadonlyArray<Backend> = [
  { name: "EscrowTest", layer: (config) => EscrowTest.layer(config) },
  ...(process.env.RINGMASTER_AGENTS_SQLITE === "0" ? [] : [sqliteBackend()].filter((b): b is Backend => b !== undefined))
]

/** An orchestrator over `ledger`, with `Accounts` and whatever `ledger` provides (`Escrow`, `Ledger`, ...) also in context. */
export const worldOn = <ROut>(ledger: Layer.Layer<ROut>, options: Partial<OrchestratorOptions> = {}) =>
  Orchestrator.layer({ name: "orchestrator", deposit: Usdc.make("100"), ...options }).pipe(
    Layer.provideMerge(Accounts.layerFromLedger),
    Layer.provideMerge(ledger)
  )

export const world = (backend: Backend, options: Partial<OrchestratorOptions> = {}, config?: Partial<LedgerConfigShape>) =>
  worldOn(backend.layer(config), options)

// ---------------------------------------------------------------------------
// Demo agents

export const Topic = Schema.Struct({ topic: Schema.String.pipe(Schema.minLength(1)) })
export const Facts = Schema.Struct({ facts: Schema.Array(Schema.String) })
export const Text = Schema.Struct({ text: Schema.String })

export const fetcher = Agent.make({
  name: "fetcher",
  input: Topic,
  output: Facts,
  price: Usdc.make("2.5"),
  run: ({ topic }) => Effect.succeed({ facts: [`${topic} rose`, `${topic} fell`] })
})

export class WriterBusy extends Schema.TaggedError<WriterBusy>()("WriterBusy", {}) {}

export const failing = Agent.make({
  name: "failing",
  input: Topic,
  output: Facts,
  price: Usdc.make("3"),
  run: () => Effect.fail(new WriterBusy())
})

/** μ-USDC of `x` (a decimal string), for readable expectations. */
export const u = (x: string) => Usdc.make(x) as bigint

/** The fee on a released part and the referrer's share of it, per the default schedule (1%, 15%). */
export const feeOf = (gross: bigint) => (gross * 10_000n) / 1_000_000n
export const shareOf = (gross: bigint) => (feeOf(gross) * 150_000n) / 1_000_000n
