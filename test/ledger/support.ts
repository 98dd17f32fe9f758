/**
 * Helpers shared by the ledger and escrow suites (and usable from scripts): balance
 * snapshots over every known wallet plus every system account, so a test can say
 * "nothing changed" or "exactly these accounts moved by exactly these amounts".
 *
 * No vitest imports here: `bench/soak.ts` and other scripts may reuse it.
 */
import { Clock, Effect, Layer, type Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SystemAccount, type WalletAddress } from "../../src/domain/ids.js"
import type { LedgerShape } from "../../src/ledger/Ledger.js"

export const systemAccounts: ReadonlyArray<string> = Object.values(SystemAccount)

export interface Snapshot {
  /** Wallet → spendable balance (the wallet's ledger account). */
  readonly available: Readonly<Record<string, bigint>>
  /** Wallet → what its pending escrows hold (in `system:escrow_holding`, not its account). */
  readonly locked: Readonly<Record<string, bigint>>
  /** System account → signed balance. */
  readonly system: Readonly<Record<string, bigint>>
  /** Row counts from `verify`: a refused call must not add postings or escrows. */
  readonly postings: number
  readonly escrows: number
}

export const snapshot = (ledger: LedgerShape, wallets: Iterable<WalletAddress>): Effect.Effect<Snapshot, unknown> =>
  Effect.gen(function*() {
    const available: Record<string, bigint> = {}
    const locked: Record<string, bigint> = {}
    for (const wallet of wallets) {
      const balance = yield* ledger.balance(wallet)
      available[wallet] = balance.available
      locked[wallet] = balance.locked
    }
    const system: Record<string, bigint> = {}
    for (const account of systemAccounts) system[account] = yield* ledger.systemBalance(account)
    const report = yield* ledger.verify
    return { available, locked, system, postings: report.postings, escrows: report.escrows }
  })

/** Σ wallets + Σ system accounts: 0 on any ledger where every wallet is in the snapshot. */
export const totalOf = (s: Snapshot): bigint => {
  let total = 0n
  for (const v of Object.values(s.available)) total += v
  for (const v of Object.values(s.system)) total += v
  return total
}

/** Per-account changes between two snapshots, zero changes left out (`wallet:` / system ids as keys). */
export const deltas = (before: Snapshot, after: Snapshot): Record<string, bigint> => {
  const out: Record<string, bigint> = {}
  const diff = (key: string, a: bigint | undefined, b: bigint | undefined) => {
    const d = (b ?? 0n) - (a ?? 0n)
    if (d !== 0n) out[key] = d
  }
  for (const key of new Set([...Object.keys(before.available), ...Object.keys(after.available)])) {
    diff(key, before.available[key], after.available[key])
  }
  for (const key of new Set([...Object.keys(before.system), ...Object.keys(after.system)])) {
    diff(key, before.system[key], after.system[key])
  }
  return out
}

/** Deterministic PRNG (mulberry32): the same seed replays the same run, in vitest or a script. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A clock that moves only when told to: reads are a variable, `advance` adds to it.
 * It plays TestClock's part for property runs at a fraction of the cost
 * (`TestClock.adjust` waits on real timers to see other fibers settle, ~5 ms a
 * call). Sleeps still take real time, so an implementation that batches on a
 * timer keeps working.
 */
export const manualClock = (startMs = 0) => {
  let nowMs = startMs
  const live = Clock.make()
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => nowMs,
    unsafeCurrentTimeNanos: () => BigInt(nowMs) * 1_000_000n,
    currentTimeMillis: Effect.sync(() => nowMs),
    currentTimeNanos: Effect.sync(() => BigInt(nowMs) * 1_000_000n),
    sleep: (duration) => live.sleep(duration)
  }
  return {
    clock,
    layer: Layer.setClock(clock),
    advance: (ms: number): Effect.Effect<void> => Effect.sync(() => void (nowMs += ms))
  }
}

/** A fresh temporary directory for one test's SQLite file, removed when the scope closes. */
export const tempDir = (prefix = "ringmaster-test-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
