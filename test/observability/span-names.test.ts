/**
 * The spans below the orchestrator carry the `ringmaster.*` names too, so one filter
 * on a trace backend finds them: the SQL ledger's group-commit batch and the
 * service's paid routes, on a real SQLite ledger.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { SpanName } from "../../src/observability/spans.js"
import { Identity, layerEmbedded as IdentityEmbedded } from "../../src/service/Identity.js"
import * as Lifecycle from "../../src/service/Lifecycle.js"
import { PaidRequests, layer as PaidRequestsLayer } from "../../src/service/PaidRequests.js"
import * as Pipeline from "../../src/service/Pipeline.js"
import * as ServiceSettings from "../../src/service/ServiceConfig.js"
import { PaymentTokens } from "../../src/settlement/PaymentTokens.js"
import { recordingTracer } from "../support/tracing.js"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-span-names-"))

const PaidOnSqlite = PaidRequestsLayer.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      Escrow.layerFromLedger,
      IdentityEmbedded,
      Pipeline.layerDefault,
      Lifecycle.layer({ shutdownTimeoutMs: 1_000 }),
      PaymentTokens.layerMemory()
    )
  ),
  Layer.provideMerge(SqlLedger.layerSqliteWith({ dataDir })),
  Layer.provideMerge(ServiceSettings.layer({ dataDir, faucetOnStart: false }))
)

describe("span names", () => {
  it.layer(PaidOnSqlite)((it) => {
    it.effect("a paid inference is one ringmaster.paid.inference span", () =>
      Effect.gen(function*() {
        const ledger = yield* Ledger
        const paid = yield* PaidRequests
        const orchestrator = (yield* Identity).wallet
        const payer = yield* ledger.registerAgent({ name: "span-payer" })
        yield* ledger.deposit(payer.wallet, Usdc.make("1"))
        const minted = yield* (yield* PaymentTokens).mint({ payer: payer.wallet, payee: orchestrator, maxAmount: Usdc.make("0.001") })

        const { names, tracer } = recordingTracer()
        const result = yield* paid.inference({ payer_wallet: payer.wallet, prompt: "hello" }, minted.token).pipe(Effect.withTracer(tracer))

        expect(result.cost).toBe(Usdc.make("0.001"))
        expect((yield* ledger.balance(payer.wallet)).available).toBe(Usdc.make("0.999"))
        expect(names.filter((name) => name === SpanName.paidInference)).toEqual(["ringmaster.paid.inference"])
        expect(names.filter((name) => name.startsWith("PaidRequests"))).toEqual([])
      }))

    it.effect("a paid task's span is ringmaster.paid.task, challenged ones included", () =>
      Effect.gen(function*() {
        const paid = yield* PaidRequests
        const { names, tracer } = recordingTracer()
        const challenge = yield* Effect.flip(paid.task("summarize", { input: { text: "One. Two." } }).pipe(Effect.withTracer(tracer)))
        expect(challenge._tag).toBe("PaymentChallenge")
        expect(names).toEqual(["ringmaster.paid.task"])
      }))
  })

  it.live("each transaction of the SQL ledger's group commit is a ringmaster.ledger.batch span", () => {
    const { names, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const ledger = yield* Ledger
      const agent = yield* ledger.registerAgent({ name: "span-batch" })
      yield* ledger.deposit(agent.wallet, Usdc.make("2"))
      expect((yield* ledger.balance(agent.wallet)).available).toBe(Usdc.make("2"))
      // The registration and the deposit each commit in a batch of the writer the layer forked.
      expect(names.filter((name) => name === SpanName.ledgerBatch).length).toBeGreaterThanOrEqual(2)
      expect(names.filter((name) => name === "Ledger.batch")).toEqual([])
    }).pipe(
      Effect.provide(SqlLedger.layerSqliteWith({ dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-span-batch-")) })),
      Effect.withTracer(tracer)
    )
  })
})
