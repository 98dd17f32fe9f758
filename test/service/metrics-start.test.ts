/**
 * The in-flight gauge of a service that starts on a ledger with escrows already
 * pending (left by a previous process): it starts from them, and goes back to 0
 * when they settle, never below. Its own file, so the metric registry of this
 * worker holds nothing from other services.
 */
import { afterAll, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { type InProcess, metricValue, startInProcess, tempDir } from "./support.js"

let svc: InProcess | undefined

afterAll(async () => {
  await svc?.dispose()
})

it("starts the in-flight gauge from the escrows pending in the ledger, by region", async () => {
  const dataDir = tempDir()
  // A previous process: the same ledger file, two escrows left pending.
  const ids = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const ledger = Context.get(yield* Layer.build(SqlLedger.layerSqliteWith({ dataDir })), Ledger)
      const payer = yield* ledger.registerAgent({ name: "payer" })
      const payee = yield* ledger.registerAgent({ name: "payee" })
      yield* ledger.deposit(payer.wallet, Usdc.make("1"))
      const open = (region: string, timeout: Duration.Duration) =>
        ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("0.1"), description: "left", metadata: { fly_region: region }, timeout })
      const first = yield* open("jnb", Duration.minutes(10))
      const second = yield* open("los", Duration.minutes(10))
      return { first: first.id, second: second.id }
    }))
  )

  svc = await startInProcess({ dataDir, region: "cpt" })
  const scrape = async () => (await fetch(svc!.metricsUrl)).text()
  const start = await scrape()
  expect(metricValue(start, "ringmaster_escrows_in_flight", { region: "jnb" })).toBe(1)
  expect(metricValue(start, "ringmaster_escrows_in_flight", { region: "los" })).toBe(1)
  expect(metricValue(start, "ringmaster_escrows_in_flight", { region: "cpt" })).toBe(0)

  // The first settles in this service's ledger: its region's gauge back to 0, not below.
  expect((await Effect.runPromise(svc.ledger!.releaseEscrow(ids.first))).status).toBe("released")
  const after = await scrape()
  expect(metricValue(after, "ringmaster_escrows_in_flight", { region: "jnb" })).toBe(0)
  expect(metricValue(after, "ringmaster_escrows_released_total", { region: "jnb" })).toBe(1)
  expect(metricValue(after, "ringmaster_escrows_in_flight", { region: "los" })).toBe(1)
  expect((await Effect.runPromise(svc.ledger!.getEscrow(ids.second))).status).toBe("pending")
}, 60_000)
