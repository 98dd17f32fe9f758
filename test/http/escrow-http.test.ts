/**
 * `EscrowHttp.layer` against a real settlement server: the derived
 * client over undici, typed errors back from the error bodies, retries only where
 * a repeat cannot pay twice, timeouts, a start that does not need the service.
 * (The shared Escrow contract also runs against this layer: see escrowHttpLayer.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted, Schedule } from "effect"
import * as http from "node:http"
import * as net from "node:net"
import { freePort as freePortNow } from "../../scripts/freePort.js"
import type { EscrowId } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Forbidden } from "../../src/domain/errors.js"
import { Escrow, type EscrowShape } from "../../src/escrow/Escrow.js"
import * as EscrowHttp from "../../src/client/EscrowHttp.js"
import { agent, available, type Harness, serve, type TestAgent } from "./harness.js"

const u = Usdc.make

const clientOf = (h: Harness, a: TestAgent, options: Partial<EscrowHttp.EscrowHttpOptions> = {}) =>
  EscrowHttp.make({ baseUrl: h.base, apiKey: Redacted.make(a.key), ...options })

describe("EscrowHttp against a real server", () => {
  it.scoped("create, get, partial release, release, cancel: exact records and balances", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const escrow = yield* clientOf(h, payer)

      const created = yield* escrow.create({
        payer: payer.wallet,
        payee: payee.wallet,
        amount: u("40"),
        description: "write",
        metadata: { fly_region: "ams", ts: 1_700_000_000.5 },
        timeout: "2 minutes"
      })
      expect(created).toMatchObject({
        payer: payer.wallet,
        payee: payee.wallet,
        amount: u("40"),
        released: 0n,
        feePaid: 0n,
        refunded: 0n,
        status: "pending",
        region: "ams",
        mandateId: null,
        settledAtMs: null,
        version: 1
      })
      expect(created.expiresAtMs - created.createdAtMs).toBe(120_000)
      // No key given: one was generated for the logical create (and reused by any retry).
      expect(created.idempotencyKey).toMatch(/^rm_/)
      // The record read back over HTTP is the ledger's record, field for field.
      expect(yield* escrow.get(created.id)).toEqual(yield* h.ledger.getEscrow(created.id))

      const part = yield* escrow.release(created.id, { amount: u("10") })
      expect(part).toMatchObject({ status: "pending", released: u("10"), feePaid: u("0.1") })
      expect(yield* available(h, payee.wallet)).toBe("9.900000")
      const done = yield* escrow.release(created.id)
      expect(done).toMatchObject({ status: "released", released: u("40"), feePaid: u("0.4") })
      expect(yield* available(h, payee.wallet)).toBe("39.600000")
      // A repeated full release is idempotent by state.
      expect(yield* escrow.release(created.id)).toEqual(done)

      // Cancel as the payee (any time); a repeated cancel returns the same record.
      const payeeEscrow = yield* clientOf(h, payee)
      const second = yield* escrow.create({ payer: payer.wallet, payee: payee.wallet, amount: u("5"), description: "x" })
      expect(yield* available(h, payer.wallet)).toBe("55.000000")
      const cancelled = yield* payeeEscrow.cancel(second.id)
      expect(cancelled).toMatchObject({ status: "cancelled", refunded: u("5") })
      expect(yield* payeeEscrow.cancel(second.id)).toEqual(cancelled)
      expect(yield* available(h, payer.wallet)).toBe("60.000000")
      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("idempotent create: the same key returns the same escrow, locked once", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const escrow = yield* clientOf(h, payer)
      const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("30"), description: "x", idempotencyKey: "order-7" }
      const a = yield* escrow.create(terms)
      const b = yield* escrow.create(terms)
      expect(b.id).toBe(a.id)
      expect(yield* available(h, payer.wallet)).toBe("70.000000")
      const conflict = yield* Effect.flip(escrow.create({ ...terms, amount: u("31") }))
      expect(conflict).toMatchObject({ _tag: "IdempotencyConflict", idempotencyKey: "order-7" })
      expect(conflict.message).not.toContain(a.id)
      expect(yield* available(h, payer.wallet)).toBe("70.000000")
    }))

  it.scoped("error bodies come back as the domain's typed errors, with their facts", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const stranger = yield* agent(h, "stranger")
      const escrow = yield* clientOf(h, payer)
      const terms = { payer: payer.wallet, payee: payee.wallet, description: "x" }

      expect(yield* Effect.flip(escrow.create({ ...terms, amount: u("10.000001") }))).toMatchObject({
        _tag: "InsufficientFunds",
        wallet: payer.wallet,
        requiredMicros: 10_000_001n,
        availableMicros: 10_000_000n
      })
      const unknownPayee = ("0x" + "7".repeat(40)) as typeof payee.wallet
      expect(yield* Effect.flip(escrow.create({ ...terms, payee: unknownPayee, amount: u("1") }))).toMatchObject({
        _tag: "AgentNotFound",
        wallet: unknownPayee
      })
      expect(yield* Effect.flip(escrow.create({ ...terms, payee: payer.wallet, amount: u("1") }))).toMatchObject({
        _tag: "InvalidInput",
        field: "payee_wallet"
      })

      const created = yield* escrow.create({ ...terms, amount: u("4") })
      expect(yield* Effect.flip(escrow.release(created.id, { amount: u("4.5") }))).toMatchObject({
        _tag: "ReleaseExceedsRemaining",
        escrowId: created.id,
        requestedMicros: 4_500_000n,
        remainingMicros: 4_000_000n
      })
      yield* escrow.release(created.id)
      const asPayee = yield* clientOf(h, payee)
      expect(yield* Effect.flip(asPayee.cancel(created.id))).toMatchObject({
        _tag: "EscrowNotPending",
        escrowId: created.id,
        status: "released",
        attempted: "cancel"
      })
      const missing = "esc_0000000000000000000000000" as EscrowId
      expect(yield* Effect.flip(escrow.get(missing))).toMatchObject({ _tag: "EscrowNotFound", escrowId: missing })

      // The service refusing the caller is Forbidden, naming the operation and why:
      // a stranger's release, and the payer's cancel before the deadline (only the payee may cancel early).
      const outsider = yield* clientOf(h, stranger)
      const forbidden = yield* Effect.flip(outsider.release(created.id))
      expect(forbidden).toMatchObject({ _tag: "Forbidden", operation: "release", code: "forbidden" })
      const early = yield* escrow.create({ ...terms, amount: u("1") })
      const payerCancel = yield* Effect.flip(escrow.cancel(early.id))
      expect(payerCancel).toMatchObject({ _tag: "Forbidden", operation: "cancel", code: "forbidden" })
      expect(payerCancel.message).toMatch(/^the settlement service refused cancel \(forbidden\): .*only after its deadline/)

      // Mandate refusals keep their type.
      yield* h.http("POST", "/api/mandates", { key: payer.key, body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "1" } })
      const mandate = (yield* h.ledger.findLiveMandate(payer.wallet, payee.wallet))!
      expect(yield* Effect.flip(asPayee.create({ ...terms, amount: u("1.5"), mandateId: mandate.id }))).toMatchObject({
        _tag: "MandateExceeded",
        mandateId: mandate.id
      })
      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("Escrow.scoped over HTTP: released on success, cancelled (refunded) on failure", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { payerMayCancelBeforeDeadline: true } })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const escrow = yield* clientOf(h, payer)
      const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("2"), description: "task" }
      yield* Escrow.use(terms, () => Effect.void).pipe(Effect.provideService(Escrow, escrow))
      expect(yield* available(h, payee.wallet)).toBe("1.980000")
      const failed = yield* Effect.flip(Escrow.use(terms, () => Effect.fail("sub-agent failed" as const)).pipe(Effect.provideService(Escrow, escrow)))
      expect(failed).toBe("sub-agent failed")
      expect(yield* available(h, payer.wallet)).toBe("8.000000")
      expect(yield* escrow.unsettled).toEqual([])
    }))

  it.scopedLive("a create refused with 429 is retried with backoff under the same key: one escrow, locked once", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { agentRequestsPerSecond: 1 } })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const escrow = yield* clientOf(h, payer)
      const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("1"), description: "x" }
      yield* escrow.create(terms) // spends the one token of this second
      const started = Date.now()
      const retried = yield* escrow.create(terms) // 429, then backoff 100/200/400/800 ms (±20%) until the bucket refills
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      expect(retried.status).toBe("pending")
      const page = yield* h.ledger.listEscrows({ wallet: payer.wallet })
      expect(page.escrows).toHaveLength(2)
      expect(yield* available(h, payer.wallet)).toBe("8.000000")
    }), 20_000)

  it.scopedLive("a 403 is Forbidden after exactly one request: neither the client nor the scope's settlement retries it", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const stranger = yield* agent(h, "stranger")
      const proxy = yield* countingProxy(h.base)
      const asPayer = yield* clientOf(h, payer)
      const asStranger = yield* EscrowHttp.make({ baseUrl: proxy.base, apiKey: Redacted.make(stranger.key) })
      const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("4"), description: "x" }

      const created = yield* asPayer.create(terms)
      const refused = yield* Effect.flip(asStranger.release(created.id))
      expect(refused).toBeInstanceOf(Forbidden)
      expect(refused).toMatchObject({ _tag: "Forbidden", operation: "release", code: "forbidden" })
      expect(proxy.requests("POST /api/escrow/release")).toBe(1)

      // A scope whose release the service refuses: recorded after one attempt, not retried.
      const refusedRelease: EscrowShape = { ...asPayer, release: asStranger.release }
      const quickRetry = Schedule.spaced("1 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
      yield* Escrow.use(terms, () => Effect.void, { settlementRetry: quickRetry }).pipe(Effect.provideService(Escrow, refusedRelease))
      expect(proxy.requests("POST /api/escrow/release")).toBe(2)
      const [unsettled] = yield* asPayer.unsettled
      expect(unsettled).toMatchObject({ intent: "release", attempts: 1 })
      expect(unsettled!.error).toMatch(/^the settlement service refused release \(forbidden\)/)
      // Nothing moved: both escrows still lock the payer's 8 USDC, the payee has nothing.
      expect(yield* h.ledger.balance(payer.wallet)).toMatchObject({ available: u("2"), locked: u("8") })
      expect(yield* available(h, payee.wallet)).toBe("0.000000")
    }))

  it.scopedLive("a bad key is not retried: Forbidden naming 401 unauthorized", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payee = yield* agent(h, "payee")
      const escrow = yield* EscrowHttp.make({ baseUrl: h.base, apiKey: Redacted.make("pk_" + "x".repeat(43)) })
      const started = Date.now()
      const error = yield* Effect.flip(escrow.create({ payer: payee.wallet, payee: payee.wallet, amount: u("1"), description: "x" }))
      expect(error).toMatchObject({ _tag: "Forbidden", operation: "create", code: "unauthorized" })
      expect(Date.now() - started).toBeLessThan(1_000)
    }))

  it.scopedLive("the layer starts without the service (warm-up failure is logged); calls fail as LedgerUnavailable after bounded retries", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const escrow = yield* EscrowHttp.make({
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey: Redacted.make("pk_" + "x".repeat(43)),
        retry: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
      })
      const error = yield* Effect.flip(escrow.get("esc_0000000000000000000000000" as EscrowId))
      expect(error._tag).toBe("LedgerUnavailable")
      expect(error.message).toContain("get failed")
    }))

  it.scopedLive("a service that accepts but never answers hits the read timeout", () =>
    Effect.gen(function*() {
      const port = yield* silentServer
      const escrow = yield* EscrowHttp.make({
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey: Redacted.make("pk_" + "x".repeat(43)),
        readTimeout: "200 millis",
        retry: Schedule.recurs(1)
      })
      const started = Date.now()
      const error = yield* Effect.flip(escrow.get("esc_0000000000000000000000000" as EscrowId))
      expect(error._tag).toBe("LedgerUnavailable")
      expect(error.message).toContain("no response within 200 ms")
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(380)
      expect(elapsed).toBeLessThan(5_000)
    }))

  it.scoped("layerConfig reads ESCROW_BASE and PF_API_KEY", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "3")
      const payee = yield* agent(h, "payee")
      const provider = ConfigProvider.fromMap(new Map([["ESCROW_BASE", h.base + "/"], ["PF_API_KEY", payer.key]]))
      const created = yield* Effect.flatMap(Escrow, (escrow) =>
        escrow.create({ payer: payer.wallet, payee: payee.wallet, amount: u("3"), description: "x" })).pipe(
          Effect.provide(EscrowHttp.layerConfig),
          Effect.withConfigProvider(provider)
        )
      expect(created.amount).toBe(u("3"))
      expect(yield* available(h, payer.wallet)).toBe("0.000000")
    }))
})

/** A port nothing listens on. */
const freePort = Effect.promise(freePortNow)

/** Accepts connections and never writes a byte; closed with the scope. */
const silentServer = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ server: net.Server; sockets: Set<net.Socket> }>((resolve) => {
        const sockets = new Set<net.Socket>()
        const server = net.createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
        })
        server.listen(0, "127.0.0.1", () => resolve({ server, sockets }))
      })
  ),
  ({ server, sockets }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
    )
).pipe(Effect.map(({ server }) => (server.address() as net.AddressInfo).port))


/**
 * A loopback proxy in front of a real server that counts the requests it forwards,
 * by "METHOD /path": how many times a client really called. Closed with the scope.
 */
const countingProxy = (target: string) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: http.Server; counts: Map<string, number> }>((resolve) => {
          const counts = new Map<string, number>()
          const server = http.createServer((request, response) => {
            const chunks: Array<Buffer> = []
            request.on("data", (chunk: Buffer) => chunks.push(chunk))
            request.on("end", async () => {
              const key = `${request.method} ${request.url}`
              counts.set(key, (counts.get(key) ?? 0) + 1)
              const headers = Object.fromEntries(
                Object.entries(request.headers).filter(([name, value]) => typeof value === "string" && !["host", "connection", "content-length", "keep-alive"].includes(name))
              ) as Record<string, string>
              const body = chunks.length === 0 ? undefined : Buffer.concat(chunks)
              const answer = await fetch(target + request.url, { method: request.method!, headers, ...(body === undefined ? {} : { body }) })
              response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" })
              response.end(Buffer.from(await answer.arrayBuffer()))
            })
          })
          server.listen(0, "127.0.0.1", () => resolve({ server, counts }))
        })
    ),
    ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined))
  ).pipe(
    Effect.map(({ counts, server }) => ({
      base: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      requests: (key: string) => counts.get(key) ?? 0
    }))
  )
