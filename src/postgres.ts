/**
 * ringmaster/postgres: the ledger on PostgreSQL (`Postgres.layer({ url })`), and
 * `LedgerBackend`, which picks SQLite or PostgreSQL from the environment.
 */
export * as Postgres from "./ledger/Postgres.js"
export type { PgOptions } from "./ledger/Postgres.js"
export * as LedgerBackend from "./ledger/Backend.js"
