/**
 * Client examples in Python and Go: the example agents in
 * `examples/python` (httpx) and `examples/go` (net/http), written in the hosted
 * dialect, run unchanged against the real settlement server (HTTP on an ephemeral
 * loopback port, the SQLite ledger in a temp dir). Their printed summaries must
 * show the exact money: faucet 1 USDC, a 0.42 USDC task released (1% fee borne by
 * the payee, 15% of it to the payee's referrer, who is the payer), a 0.12345 USDC
 * task cancelled and refunded in full. The ledger is checked from the inside too.
 *
 * A missing toolchain shows as a skipped test naming the package to install.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Command } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { ApiKeys } from "../../src/settlement/ApiKeys.js"
import { PaymentTokens } from "../../src/settlement/PaymentTokens.js"
import * as Server from "../../src/http/server.js"
import * as SettlementConfig from "../../src/settlement/SettlementConfig.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { go, goEnv, python, repoRoot, runProcess, summaryOf } from "./run.js"
import { type InProcess, request, startInProcess } from "../service/support.js"

const CLIENT_TIMEOUT_MS = 60_000
const GO_BUILD_TIMEOUT_MS = 180_000

/** The settlement service as `ringmaster settlement` runs it, on SQLite in a fresh temp dir and port 0. */
const ServerLive = Layer.unwrapScoped(
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "ringmaster-clients-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  ).pipe(
    Effect.map((dataDir) =>
      Server.layer.pipe(
        Layer.provideMerge(Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql())),
        Layer.provideMerge(SqlLedger.layerSqlite({ dataDir })),
        Layer.provideMerge(LedgerConfig.layer({ region: "test-local" })),
        // Every client run claims the faucet from 127.0.0.1 on this one server.
        Layer.provideMerge(SettlementConfig.layer({ port: 0, host: "127.0.0.1", faucetClaimsPerAddressPerDay: 100 }))
      )
    )
  )
)

// The run both clients make (see their sources), in micro-USDC.
const FAUCET = Usdc.make("1")
const PAID = Usdc.make("0.42") // sent as the float 0.42000000000000004
const FEE = PAID / 100n // 1%, borne by the payee
const REFERRER_SHARE = (FEE * 15n) / 100n // 15% of the fee, to the payee's referrer: the payer
const PLATFORM_KEEPS = FEE - REFERRER_SHARE

const expectSummary = (summary: Record<string, any>, region: string) => {
  expect(summary.faucet).toEqual({ credited_usdc: "1.000000", balance_usdc: "1.000000" })
  expect(summary.paid).toMatchObject({
    status: "released",
    sent_amount: 0.42000000000000004,
    amount_usdc: "0.420000",
    fee_usdc: "0.004200",
    net_usdc: "0.415800"
  })
  expect(summary.failed).toMatchObject({ status: "cancelled", sent_amount: 0.12345, amount_usdc: "0.123450" })
  // Payee: the task's net. Payer: faucet − task + its referral share; the cancel refunded everything.
  expect(summary.payee).toMatchObject({ balance_usdc: Usdc.format(PAID - FEE), locked_usdc: "0.000000" })
  expect(summary.payer).toMatchObject({
    balance_usdc: Usdc.format(FAUCET - PAID + REFERRER_SHARE),
    locked_usdc: "0.000000"
  })
  expect(summary.payee.balance_usdc).toBe("0.415800")
  expect(summary.payer.balance_usdc).toBe("0.580630")
  expect(summary.referrals).toMatchObject({
    referral_code: summary.payer.referral_code,
    earned_usdc: "0.000630",
    by_region: { [region]: "0.000630" }
  })
  expect(summary.referrals.referred_agents).toEqual([
    expect.objectContaining({
      agent_id: summary.payee.agent_id,
      wallet_address: summary.payee.wallet_address,
      earned_usdc: "0.000630"
    })
  ])
}

/** Runs one client and checks the ledger from the inside: exact platform fee, nothing left locked, no violation. */
const runClient = (command: Command.Command, region: string) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const feesBefore = yield* ledger.systemBalance(SystemAccount.platformFees)
    const holdingBefore = yield* ledger.systemBalance(SystemAccount.escrowHolding)
    const finished = yield* runProcess(command, CLIENT_TIMEOUT_MS)
    expect(finished.exitCode, finished.stderr).toBe(0)
    const summary = summaryOf(finished)
    expect(summary.region).toBe(region)
    expectSummary(summary, region)

    expect((yield* ledger.systemBalance(SystemAccount.platformFees)) - feesBefore).toBe(PLATFORM_KEEPS)
    expect(yield* ledger.systemBalance(SystemAccount.escrowHolding)).toBe(holdingBefore)
    const paid = yield* ledger.getEscrow(summary.paid.escrow_id)
    expect(paid.region).toBe(region)
    expect(typeof paid.metadata["ts"]).toBe("number") // the float time.time() the dialect sends
    expect((yield* ledger.verify).violations).toEqual([])
    return { summary, ledger }
  })

const baseEnv = (base: string, region: string) => ({ ESCROW_BASE: base, FLY_REGION: region })

describe("example clients against the settlement server", () => {
  it.layer(ServerLive, { timeout: "60 seconds" })((it) => {
    it.effect.skipIf(python.path === null)(
      `python (httpx) client: register, faucet, mandate, paid and failed task${python.path === null ? ` — skipped: ${python.reason}` : ""}`,
      () =>
        Effect.gen(function*() {
          const base = yield* Server.baseUrl
          yield* runClient(
            Command.make(python.path!, join(repoRoot, "examples/python/agent_client.py")).pipe(
              Command.env({ ...baseEnv(base, "iad"), PYTHONDONTWRITEBYTECODE: "1" })
            ),
            "iad"
          )
        }),
      CLIENT_TIMEOUT_MS + 10_000
    )

    it.effect.skipIf(python.path === null)(
      `python client exits non-zero on an unexpected HTTP status${python.path === null ? ` — skipped: ${python.reason}` : ""}`,
      () =>
        Effect.gen(function*() {
          const base = yield* Server.baseUrl
          const finished = yield* runProcess(
            Command.make(python.path!, join(repoRoot, "examples/python/agent_client.py")).pipe(
              Command.env({ ...baseEnv(`${base}/no-such-prefix`, "iad"), PYTHONDONTWRITEBYTECODE: "1" })
            ),
            CLIENT_TIMEOUT_MS
          )
          expect(finished.exitCode).toBe(1)
          expect(finished.stderr).toMatch(/POST \/api\/agents: expected HTTP 201, got 404/)
          expect(finished.stdout).not.toMatch(/^\{/m)
        }),
      CLIENT_TIMEOUT_MS + 10_000
    )

    it.effect.skipIf(!go.available)(
      `go (net/http) client: builds offline, then register, faucet, mandate, paid and failed task${!go.available ? ` — skipped: ${go.reason}` : ""}`,
      () =>
        Effect.gen(function*() {
          const base = yield* Server.baseUrl
          const binDir = mkdtempSync(join(tmpdir(), "ringmaster-go-bin-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(binDir, { recursive: true, force: true })))
          const binary = join(binDir, "agent-client")
          const build = yield* runProcess(
            Command.make("go", "build", "-o", binary, ".").pipe(
              Command.workingDirectory(join(repoRoot, "examples/go")),
              Command.env(goEnv())
            ),
            GO_BUILD_TIMEOUT_MS
          )
          expect(build.exitCode, build.stderr).toBe(0)

          const { summary, ledger } = yield* runClient(Command.make(binary).pipe(Command.env(baseEnv(base, "lhr"))), "lhr")
          // The failed task used the hosted Go sample's EscrowReq verbatim ("region", no "fly_region"):
          // accepted, stored as sent, and tagged with the region it names.
          const failed = yield* ledger.getEscrow(summary.failed.escrow_id)
          expect(failed.metadata).toEqual({ region: "lhr" })
          expect(failed.region).toBe("lhr")

          const broken = yield* runProcess(
            Command.make(binary).pipe(Command.env(baseEnv(`${base}/no-such-prefix`, "lhr"))),
            CLIENT_TIMEOUT_MS
          )
          expect(broken.exitCode).toBe(1)
          expect(broken.stderr).toMatch(/POST \/api\/agents: expected HTTP 201, got 404/)
        }).pipe(Effect.scoped),
      GO_BUILD_TIMEOUT_MS + CLIENT_TIMEOUT_MS + 10_000
    )
  })
})

/** The paid-route flow both clients run when ORCHESTRATOR_URL is set: 402 challenge, token, retry. */
const expectInference = (summary: Record<string, any>, orchestrator: string) => {
  expect(summary.inference.challenge).toMatchObject({
    status: 402,
    error: "payment_required",
    price_usdc: "0.001000",
    payee_wallet: orchestrator,
    accepted_methods: ["payment_token"]
  })
  expect(summary.inference.challenge.www_authenticate).toMatch(/^Payment realm="ringmaster", /)
  expect(JSON.stringify(summary.inference.challenge)).not.toMatch(/balance|available/)
  expect(summary.inference.paid).toMatchObject({ cost_usdc: "0.001000" })
  // The payer paid exactly the price, after the run above left it at 0.580630.
  expect(summary.inference.payer_balance_after_usdc).toBe("0.579630")
}

describe("example clients against an orchestrator service (settlement embedded)", () => {
  let svc: InProcess
  let orchestrator: string
  beforeAll(async () => {
    svc = await startInProcess({ region: "ord" })
    orchestrator = (await request(svc.base, "GET", "/info")).body.wallet_address
  }, 60_000)
  afterAll(async () => {
    await svc?.dispose()
  })
  const env = () => ({ ESCROW_BASE: svc.base, ORCHESTRATOR_URL: svc.base, FLY_REGION: "ord" })

  it.effect.skipIf(python.path === null)(
    `python client buys an inference: 402 challenge, payment token, retry${python.path === null ? ` — skipped: ${python.reason}` : ""}`,
    () =>
      Effect.gen(function*() {
        const finished = yield* runProcess(
          Command.make(python.path!, join(repoRoot, "examples/python/agent_client.py")).pipe(
            Command.env({ ...env(), PYTHONDONTWRITEBYTECODE: "1" })
          ),
          CLIENT_TIMEOUT_MS
        )
        expect(finished.exitCode, finished.stderr).toBe(0)
        const summary = summaryOf(finished)
        expectSummary(summary, "ord")
        expectInference(summary, orchestrator)
        const escrow = yield* svc.ledger!.getEscrow(summary.inference.paid.escrow_id)
        expect(escrow).toMatchObject({ status: "released", payer: summary.payer.wallet_address, payee: orchestrator, amount: Usdc.make("0.001") })
      }),
    CLIENT_TIMEOUT_MS + 10_000
  )

  it.effect.skipIf(!go.available)(
    `go client buys an inference: 402 challenge, payment token, retry${!go.available ? ` — skipped: ${go.reason}` : ""}`,
    () =>
      Effect.gen(function*() {
        const binDir = mkdtempSync(join(tmpdir(), "ringmaster-go-bin-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(binDir, { recursive: true, force: true })))
        const binary = join(binDir, "agent-client")
        const build = yield* runProcess(
          Command.make("go", "build", "-o", binary, ".").pipe(Command.workingDirectory(join(repoRoot, "examples/go")), Command.env(goEnv())),
          GO_BUILD_TIMEOUT_MS
        )
        expect(build.exitCode, build.stderr).toBe(0)
        const finished = yield* runProcess(Command.make(binary).pipe(Command.env(env())), CLIENT_TIMEOUT_MS)
        expect(finished.exitCode, finished.stderr).toBe(0)
        const summary = summaryOf(finished)
        expectSummary(summary, "ord")
        expectInference(summary, orchestrator)
      }).pipe(Effect.scoped),
    GO_BUILD_TIMEOUT_MS + CLIENT_TIMEOUT_MS + 10_000
  )
})
