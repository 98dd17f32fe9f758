/**
 * `Escrow` on the embedded engine: a SQLite ledger file, durable commits. It lives
 * apart from the `Escrow` port (in the `ringmaster/sqlite` entry) so that a program
 * using only the port, `EscrowTest` or the HTTP client never loads the SQLite driver.
 */
import { Layer } from "effect"
import type { LedgerConfigShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as SqlLedger from "../ledger/SqlLedger.js"
import { Escrow } from "./Escrow.js"

export interface EscrowSqliteOptions extends SqlLedger.SqliteOptions {
  /** The ledger's settings; defaults: 1% fee, 15% referral, 15-minute deadline. */
  readonly ledger?: Partial<LedgerConfigShape> | undefined
}

/**
 * A SQLite ledger in `dataDir` (default `./data`), durable commits, settings from
 * `ledger`. Also provides the `Ledger` itself and the `SettlementJournal`.
 */
export const layer = (options: EscrowSqliteOptions = {}) =>
  Layer.provideMerge(Escrow.layerFromLedger, SqlLedger.layerSqlite(options)).pipe(
    Layer.provide(LedgerConfig.layer(options.ledger))
  )

/** Like `layer`, with the ledger's settings from the environment (`ESCROW_FEE`, `REFERRAL_RATE`, `FLY_REGION`, ...). */
export const layerConfig = (options: SqlLedger.SqliteOptions = {}) =>
  Layer.provideMerge(Escrow.layerFromLedger, SqlLedger.layerSqlite(options)).pipe(Layer.provide(LedgerConfig.layerConfig))
