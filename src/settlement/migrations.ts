/**
 * The settlement service's tables, for the lead's migrator
 * (`Migrator.fromRecord({ ...ledgerMigrations, ...httpMigrations })`). Ids from 0101
 * keep clear of the ledger's. Portable SQL: the same statements run on SQLite and
 * PostgreSQL; `IF NOT EXISTS` lets `ApiKeys.layerSql` run them itself until the
 * migrator does.
 */
import createApiKeysTable from "../ledger/migrations/0002_api_keys.js"

/** The table is created by the ledger's migrations; `ApiKeys.layerSql` runs the same statement for a bare SqlClient. */
export { default as createApiKeysTable } from "../ledger/migrations/0002_api_keys.js"

export const migrations = {
  "0101_api_keys": createApiKeysTable
} as const
