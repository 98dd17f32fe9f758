/**
 * Two real settlement processes (`settlement-main.ts`: the REST API over HTTP) on
 * one PostgreSQL database, started together on an empty database, and 350
 * concurrent clients firing conflicting operations at both at once:
 *
 * - release (payer) vs cancel (payee) on the same 100 escrows, each side sent to a
 *   different process;
 * - 60 creates of 0.3 USDC under one mandate with a 10 USDC budget, spread over
 *   both processes (together they would exceed the budget);
 * - 30 wallets each claiming the faucet three times, on both processes.
 *
 * Every conflict must have exactly one winner, every balance must be exact, and
 * `ringmaster ledger verify`, run as a process against the database afterwards,
 * must exit 0.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { SystemAccount, type WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger, type LedgerShape } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as Postgres from "../../src/ledger/Postgres.js"
import { createDatabase, describePg, type TestDatabase } from "./harness.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const u = Usdc.make
const fmt = Usdc.format

interface Settlement {
  readonly child: ChildProcess
  readonly base: string
  readonly output: () => string
}

/** Starts one settlement process on `databaseUrl`; resolves once it listens (bounded to 60 s). */
const startSettlement = (databaseUrl: string): Promise<Settlement> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/postgres/settlement-main.ts"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", DATABASE_URL: databaseUrl },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`settlement process did not listen within 60 s:\n${output}`))
    }, 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /LISTENING (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ child, base: match[1]!, output: () => output })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`settlement process exited with ${code} before listening:\n${output}`))
    })
  })

/** SIGTERM, then wait for the exit (SIGKILL after 20 s). */
const stop = (s: Settlement) =>
  new Promise<number | null>((resolve) => {
    if (s.child.exitCode !== null) return resolve(s.child.exitCode)
    const timer = setTimeout(() => s.child.kill("SIGKILL"), 20_000)
    s.child.once("exit", (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    s.child.kill("SIGTERM")
  })

interface Reply {
  readonly status: number
  readonly body: any
}

const call = (base: string, method: string, route: string, key?: string, body?: unknown) => async (): Promise<Reply> => {
  const response = await fetch(base + route, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: await response.json() }
}

/** `ringmaster ledger verify` as a process on the database (bounded to 60 s). */
const verifyProcess = (databaseUrl: string) =>
  new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/ledger-cli/entry.ts", "ledger", "verify"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", DATABASE_URL: databaseUrl },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => void (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`ledger verify did not finish in 60 s:\n${output}`))
    }, 60_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

describePg("two settlement processes on one PostgreSQL database", () => {
  let db: TestDatabase | undefined
  let a: Settlement | undefined
  let b: Settlement | undefined
  beforeAll(async () => {
    db = await createDatabase("processes")
    // Started together on an empty database: migrations and first-start funding happen once.
    ;[a, b] = await Promise.all([startSettlement(db.url), startSettlement(db.url)])
  }, 90_000)
  afterAll(async () => {
    await Promise.all([a, b].map((s) => (s === undefined ? undefined : stop(s))))
    await db?.drop()
  }, 60_000)

  it.live("350 concurrent clients, conflicting operations on both processes: one winner per conflict, money exact, verify exits 0", () =>
    Effect.gen(function*() {
      // A third view of the same database, for deposits (not an HTTP operation) and for checking balances.
      const ledger: LedgerShape = yield* Ledger
      const A = a!.base
      const B = b!.base
      const register = (base: string, name: string, referralCode?: string) =>
        Effect.promise(call(base, "POST", "/api/agents", undefined, { agent_name: name, ...(referralCode ? { referral_code: referralCode } : {}) })).pipe(
          Effect.map((r) => {
            expect(r.status).toBe(201)
            return { wallet: r.body.wallet_address as WalletAddress, key: r.body.api_key as string, referralCode: r.body.referral_code as string }
          })
        )
      const referrer = yield* register(A, "referrer")
      const payer = yield* register(B, "payer", referrer.referralCode)
      const payee = yield* register(A, "payee")
      yield* ledger.deposit(payer.wallet, u("1000"))
      const claimers = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => register(i % 2 === 0 ? A : B, `claimer-${i}`), {
        concurrency: 10
      })

      // 100 escrows of 1.23, opened half on each process.
      const escrowIds = yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) =>
        Effect.promise(call(i % 2 === 0 ? A : B, "POST", "/api/escrow/create", payer.key, {
          payer_wallet: payer.wallet,
          payee_wallet: payee.wallet,
          amount_usdc: "1.23",
          description: `job ${i}`
        })).pipe(Effect.map((r) => {
          expect(r.status).toBe(201)
          return r.body.escrow_id as string
        })), { concurrency: 20 })
      const mandate = yield* Effect.promise(call(A, "POST", "/api/mandates", payer.key, {
        payee_wallet: payee.wallet,
        max_amount_usdc: "1",
        budget_usdc: "10"
      }))
      expect(mandate.status).toBe(201)
      const treasuryBefore = yield* ledger.systemBalance(SystemAccount.faucetTreasury)

      // All at once: 200 release/cancel racers, 60 mandate creates, 90 faucet claims.
      const races = escrowIds.flatMap((id, i) => {
        const [releaseAt, cancelAt] = i % 2 === 0 ? [A, B] : [B, A]
        return [
          { kind: "race", id, op: "release", run: call(releaseAt, "POST", "/api/escrow/release", payer.key, { escrow_id: id }) },
          { kind: "race", id, op: "cancel", run: call(cancelAt, "POST", "/api/escrow/cancel", payee.key, { escrow_id: id }) }
        ]
      })
      const creates = Array.from({ length: 60 }, (_, i) => ({
        kind: "mandate",
        id: String(i),
        op: "create",
        run: call(i % 2 === 0 ? A : B, "POST", "/api/escrow/create", payee.key, {
          payer_wallet: payer.wallet,
          payee_wallet: payee.wallet,
          amount_usdc: "0.3",
          description: `under mandate ${i}`,
          mandate_id: mandate.body.mandate_id
        })
      }))
      const claims = claimers.flatMap((c) =>
        [A, B, A].map((base) => ({
          kind: "faucet",
          id: c.wallet,
          op: "claim",
          run: call(base, "POST", "/api/faucet/claim", c.key, { wallet_address: c.wallet, agent_name: "claimer" })
        }))
      )
      const requests = [...races, ...creates, ...claims]
      // Interleave deterministically so the kinds mix on the wire.
      requests.sort((x, y) => (x.id + x.op).localeCompare(y.id + y.op))
      expect(requests).toHaveLength(350)
      const replies = yield* Effect.promise(() => Promise.all(requests.map(async (r) => ({ ...r, reply: await r.run() }))))

      // Release vs cancel: exactly one winner per escrow, the loser told the winner's state.
      let released = 0
      for (const id of escrowIds) {
        const pair = replies.filter((r) => r.kind === "race" && r.id === id)
        const winners = pair.filter((r) => r.reply.status === 200)
        const losers = pair.filter((r) => r.reply.status !== 200)
        expect(winners).toHaveLength(1)
        expect(losers.map((l) => `${l.reply.status} ${l.reply.body.error}`)).toEqual(["409 escrow_not_pending"])
        expect(losers[0]!.reply.body.details.status).toBe(winners[0]!.reply.body.status)
        const final = yield* ledger.getEscrow(id as never)
        expect(final.status).toBe(winners[0]!.reply.body.status)
        if (final.status === "released") released++
      }
      expect(released).toBeGreaterThan(0)
      expect(released).toBeLessThan(100)

      // Mandate: floor(10 / 0.3) = 33 creates fit (9.9 USDC); the other 27 are refused by the budget.
      const created = replies.filter((r) => r.kind === "mandate" && r.reply.status === 201)
      const refusedByBudget = replies.filter((r) => r.kind === "mandate" && r.reply.status !== 201)
      expect(created).toHaveLength(33)
      expect(refusedByBudget.map((r) => `${r.reply.status} ${r.reply.body.error}`)).toEqual(Array(27).fill("403 mandate_exceeded"))
      expect((yield* ledger.getMandate(mandate.body.mandate_id)).remaining).toBe(u("0.1"))

      // Faucet: one payment per wallet.
      for (const c of claimers) {
        const three = replies.filter((r) => r.kind === "faucet" && r.id === c.wallet)
        expect(three.filter((r) => r.reply.status === 200)).toHaveLength(1)
        expect(three.filter((r) => r.reply.status !== 200).map((r) => `${r.reply.status} ${r.reply.body.error}`)).toEqual([
          "409 faucet_already_claimed",
          "409 faucet_already_claimed"
        ])
        expect(fmt((yield* ledger.balance(c.wallet)).available)).toBe("1.000000")
      }
      expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(treasuryBefore - u("30"))

      // Money: 1.23 released → fee 0.0123, 15% of it (0.001845) to the payer's referrer, the rest to the platform.
      const n = BigInt(released)
      const payerBalance = yield* ledger.balance(payer.wallet)
      expect({
        payer: fmt(payerBalance.available),
        payerLocked: fmt(payerBalance.locked),
        payee: fmt((yield* ledger.balance(payee.wallet)).available),
        referrer: fmt((yield* ledger.balance(referrer.wallet)).available),
        platform: fmt(yield* ledger.systemBalance(SystemAccount.platformFees)),
        holding: fmt(yield* ledger.systemBalance(SystemAccount.escrowHolding))
      }).toEqual({
        payer: fmt(u("1000") - n * u("1.23") - u("9.9")),
        payerLocked: "9.900000",
        payee: fmt(n * u("1.2177")),
        referrer: fmt(n * u("0.001845")),
        platform: fmt(n * u("0.010455")),
        holding: "9.900000"
      })
      expect((yield* ledger.verify).violations).toEqual([])

      // And the operator's check, as a process, against the live database.
      const verify = yield* Effect.promise(() => verifyProcess(db!.url))
      expect(verify.output).toContain("OK, every invariant holds")
      expect(verify.code).toBe(0)
    }).pipe(
      Effect.provide(Postgres.layer({ url: Redacted.make(db!.url) }).pipe(Layer.provide(LedgerConfig.layer()))),
      Effect.scoped
    ), 180_000)
})
