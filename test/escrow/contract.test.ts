/**
 * The Escrow contract, run against every implementation. Adding one is one line:
 * a name and a factory from config overrides to a fresh `Escrow | Ledger` layer.
 */
import { Effect, Layer } from "effect"
import { Escrow } from "../../src/escrow/Escrow.js"
import * as EscrowSqlite from "../../src/escrow/EscrowSqlite.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../../src/ledger/MemoryLedger.js"
import { layerHttpAgainstServer } from "../http/escrowHttpLayer.js"
import { tempDir } from "../ledger/support.js"
import { escrowContract, type Implementation } from "./contract.js"

export const implementations: ReadonlyArray<Implementation> = [
  ["EscrowTest.layer", (config) => EscrowTest.layer(config)],
  [
    "Escrow.layerFromLedger(MemoryLedger)",
    (config) => Escrow.layerFromLedger.pipe(Layer.provideMerge(MemoryLedger.layer), Layer.provide(LedgerConfig.layer(config)))
  ],
  [
    "EscrowSqlite.layer (SQLite, durable journal)",
    (config) => Layer.unwrapScoped(Effect.map(tempDir(), (dataDir) => EscrowSqlite.layer({ dataDir, ledger: config })))
  ],
  ["EscrowHttp.layer (real server on a loopback port)", layerHttpAgainstServer]
]

escrowContract(implementations)
