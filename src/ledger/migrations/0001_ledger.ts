/**
 * The ledger's tables. Portable SQL: the same statements run on SQLite and
 * PostgreSQL (BIGINT has INTEGER affinity in SQLite; TEXT keys; no autoincrement;
 * timestamps are epoch milliseconds). Money columns are integer micro-USDC.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
  )`
  yield* sql`CREATE TABLE agents (
    wallet TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    referral_code TEXT NOT NULL UNIQUE,
    referrer TEXT,
    created_at_ms BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX agents_referrer ON agents (referrer)`
  yield* sql`CREATE TABLE escrows (
    id TEXT PRIMARY KEY,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    released BIGINT NOT NULL CHECK (released >= 0),
    fee_paid BIGINT NOT NULL CHECK (fee_paid >= 0),
    refunded BIGINT NOT NULL CHECK (refunded >= 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'released', 'cancelled', 'expired')),
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    region TEXT NOT NULL,
    idempotency_key TEXT,
    mandate_id TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    settled_at_ms BIGINT,
    version INTEGER NOT NULL,
    CHECK (released + refunded <= amount)
  )`
  // NULL keys are distinct on both backends, so escrows without a key never collide.
  yield* sql`CREATE UNIQUE INDEX escrows_idempotency ON escrows (payer, idempotency_key)`
  yield* sql`CREATE INDEX escrows_payer ON escrows (payer, status)`
  yield* sql`CREATE INDEX escrows_payee ON escrows (payee, status)`
  // Partial: only pending escrows can fall due, and a settled one leaves the index for good.
  // (Every index here is paid for on each group commit; region reports scan instead.)
  yield* sql`CREATE INDEX escrows_due ON escrows (expires_at_ms) WHERE status = 'pending'`
  yield* sql`CREATE TABLE escrow_events (
    escrow_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    amount BIGINT NOT NULL,
    region TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (escrow_id, seq)
  )`
  yield* sql`CREATE TABLE postings (
    transfer_id TEXT NOT NULL,
    leg INTEGER NOT NULL,
    account TEXT NOT NULL,
    amount BIGINT NOT NULL,
    kind TEXT NOT NULL,
    escrow_id TEXT,
    counterparty TEXT,
    region TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, leg)
  )`
  yield* sql`CREATE INDEX postings_account ON postings (account, kind)`
  yield* sql`CREATE TABLE mandates (
    id TEXT PRIMARY KEY,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    max_amount BIGINT NOT NULL,
    budget BIGINT NOT NULL,
    remaining BIGINT NOT NULL CHECK (remaining >= 0),
    expires_at_ms BIGINT,
    revoked INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX mandates_pair ON mandates (payer, payee)`
  yield* sql`CREATE TABLE faucet_claims (
    wallet TEXT PRIMARY KEY,
    agent_name TEXT NOT NULL,
    amount BIGINT NOT NULL,
    day TEXT NOT NULL,
    at_ms BIGINT NOT NULL
  )`
  yield* sql`CREATE TABLE faucet_days (
    day TEXT PRIMARY KEY,
    claims INTEGER NOT NULL
  )`
  yield* sql`CREATE TABLE unsettled_escrows (
    escrow_id TEXT PRIMARY KEY,
    intent TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at_ms BIGINT NOT NULL
  )`
  yield* sql`CREATE TABLE ledger_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  )`
})
