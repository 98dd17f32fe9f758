/**
 * The `Ledger` implementations the ledger-level suites (bad input, races,
 * properties) run against. Adding one is one line: a name, a factory from config
 * overrides to a fresh, empty ledger, and how many property sequences it can
 * afford (a SQL ledger opens a database per sequence).
 */
import { Effect, Layer } from "effect"
import type { Ledger, LedgerConfigShape } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../../src/ledger/MemoryLedger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { tempDir } from "./support.js"

export type LedgerFactory = (config: Partial<LedgerConfigShape>) => Layer.Layer<Ledger, unknown>
export interface LedgerScale {
  /** Fraction of the property suite's sequence counts to run (1 = all). */
  readonly propertyScale: number
}
export type LedgerImplementation = readonly [name: string, make: LedgerFactory, scale?: LedgerScale]

export const memoryLedger: LedgerFactory = (config) => MemoryLedger.layer.pipe(Layer.provide(LedgerConfig.layer(config)))

/** A SQLite ledger in a fresh temporary directory, deleted after the test. */
export const sqliteLedger = (options: { readonly synchronous?: "FULL" | "NORMAL" } = {}): LedgerFactory => (config) =>
  Layer.unwrapScoped(Effect.map(tempDir(), (dataDir) => SqlLedger.layerSqliteWith({ dataDir, ...options }, config)))

export const ledgerImplementations: ReadonlyArray<LedgerImplementation> = [
  ["MemoryLedger", memoryLedger],
  ["SqlLedger (SQLite)", sqliteLedger({ synchronous: "NORMAL" }), { propertyScale: 0.02 }]
]
