/**
 * The spans a library user sees through OpenTelemetry: each paid task, hire and
 * stream, and each escrow operation under it, with the attributes that say which
 * agent, which escrow, what price and how it ended. Exported through the real SDK
 * (`@effect/opentelemetry`) into an in-memory exporter.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Schema, Stream } from "effect"
import { Accounts } from "../../src/agents/Accounts.js"
import * as Agent from "../../src/agents/AgentNamespace.js"
import * as LanguageModelScript from "../../src/agents/llm/LanguageModelScript.js"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { backends, failing, fetcher, u, world } from "../agents/support.js"

/** Runs `effect` traced into a fresh in-memory exporter; returns its result and the finished spans. */
const traced = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const exporter = new InMemorySpanExporter()
    const tracing = NodeSdk.layer(() => ({ resource: { serviceName: "ringmaster-test" }, spanProcessor: new SimpleSpanProcessor(exporter) }))
    // Read before the layer's scope closes: shutting the provider down empties the exporter.
    // A simple processor exports each span as it ends, so every span of `effect` is there.
    const [result, spans] = yield* Effect.provide(Effect.zip(Effect.either(effect), Effect.sync(() => exporter.getFinishedSpans())), tracing)
    return { result, spans }
  })

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((s) => s.name === name)
const one = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = named(spans, name)
  expect(found.map((s) => s.name)).toEqual([name])
  return found[0]!
}
const parentOf = (spans: ReadonlyArray<ReadableSpan>, span: ReadableSpan) =>
  spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)
/** The names from `span` up to the root. */
const ancestry = (spans: ReadonlyArray<ReadableSpan>, span: ReadableSpan): Array<string> => {
  const parent = parentOf(spans, span)
  return parent === undefined ? [span.name] : [span.name, ...ancestry(spans, parent)]
}

const backend = backends[0]!

describe("OpenTelemetry spans", () => {
  it.effect("a paid delegate: ringmaster.delegate with agent, escrow, price and outcome, over the escrow's create and release", () =>
    Effect.gen(function*() {
      const orchestrator = yield* Orchestrator
      const handle = yield* Orchestrator.spawn(fetcher)
      const { spans } = yield* traced(Orchestrator.delegate(handle, { topic: "rates" }))
      const delegate = one(spans, "ringmaster.delegate")
      const create = one(spans, "ringmaster.escrow.create")
      const escrowId = create.attributes["ringmaster.escrow.id"]
      expect(escrowId).toMatch(/^esc_/)
      expect(delegate.attributes).toMatchObject({
        "ringmaster.agent.name": "fetcher",
        "ringmaster.escrow.id": escrowId,
        "ringmaster.price.micros": u("2.5").toString(),
        "ringmaster.outcome": "paid"
      })
      expect(create.attributes).toMatchObject({
        "ringmaster.escrow.payer": orchestrator.identity.wallet,
        "ringmaster.escrow.payee": handle.wallet,
        "ringmaster.price.micros": u("2.5").toString()
      })
      expect(ancestry(spans, create)).toEqual(["ringmaster.escrow.create", "ringmaster.delegate"])
      const release = one(spans, "ringmaster.escrow.release")
      expect(release.attributes).toMatchObject({ "ringmaster.escrow.id": escrowId })
      expect(ancestry(spans, release)).toEqual(["ringmaster.escrow.release", "ringmaster.escrow.settle", "ringmaster.delegate"])
      expect(named(spans, "ringmaster.escrow.cancel")).toEqual([])
      // One trace.
      expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1)
    }).pipe(Effect.provide(world(backend))))

  it.effect("a failed delegate ends with the error as its outcome, and its escrow cancelled", () =>
    Effect.gen(function*() {
      const handle = yield* Orchestrator.spawn(failing)
      const { result, spans } = yield* traced(Orchestrator.delegate(handle, { topic: "rates" }))
      expect(result._tag).toBe("Left")
      const delegate = one(spans, "ringmaster.delegate")
      expect(delegate.attributes["ringmaster.outcome"]).toBe("WriterBusy")
      expect(delegate.status.code).toBe(2) // ERROR
      const cancel = one(spans, "ringmaster.escrow.cancel")
      expect(cancel.attributes["ringmaster.escrow.id"]).toBe(delegate.attributes["ringmaster.escrow.id"])
      expect(ancestry(spans, cancel)).toEqual(["ringmaster.escrow.cancel", "ringmaster.escrow.settle", "ringmaster.delegate"])
      expect(named(spans, "ringmaster.escrow.release")).toEqual([])
    }).pipe(Effect.provide(world(backend))))

  it.effect("a refused delegate locks nothing: no escrow span, outcome BudgetExceeded", () =>
    Effect.gen(function*() {
      const handle = yield* Orchestrator.spawn(fetcher)
      const { spans } = yield* traced(Orchestrator.delegate(handle, { topic: "rates" }, { maxPrice: Usdc.make("1") }))
      expect(one(spans, "ringmaster.delegate").attributes["ringmaster.outcome"]).toBe("BudgetExceeded")
      expect(spans.filter((s) => s.name.startsWith("ringmaster.escrow."))).toEqual([])
    }).pipe(Effect.provide(world(backend))))

  it.effect("hire wraps its delegate; a stream is one span over its lock and each batch's release", () =>
    Effect.gen(function*() {
      const hired = yield* traced(Orchestrator.hire(fetcher, { topic: "rates" }))
      const delegate = one(hired.spans, "ringmaster.delegate")
      expect(ancestry(hired.spans, delegate)).toEqual(["ringmaster.delegate", "ringmaster.hire"])
      expect(one(hired.spans, "ringmaster.hire").attributes["ringmaster.agent.name"]).toBe("fetcher")

      const ticker = Agent.streaming({
        name: "ticker",
        input: Schema.Struct({ n: Schema.Number }),
        output: Schema.Struct({ tick: Schema.Number }),
        maxPrice: Usdc.make("1"),
        pricePerBatch: Usdc.make("0.1"),
        run: ({ n }) => Stream.range(1, n).pipe(Stream.map((tick) => ({ tick })))
      })
      const handle = yield* Orchestrator.spawn(ticker)
      const streamed = yield* traced(Stream.runCollect(Orchestrator.stream(handle, { n: 3 })))
      const stream = one(streamed.spans, "ringmaster.stream")
      expect(stream.attributes).toMatchObject({ "ringmaster.agent.name": "ticker", "ringmaster.price.micros": u("1").toString() })
      expect(stream.attributes["ringmaster.escrow.id"]).toMatch(/^esc_/)
      const releases = named(streamed.spans, "ringmaster.escrow.release")
      expect(releases.map((r) => r.attributes["ringmaster.amount.micros"])).toEqual([u("0.1"), u("0.1"), u("0.1")].map(String))
      for (const release of releases) expect(parentOf(streamed.spans, release)?.name).toBe("ringmaster.stream")
      // The remainder is refunded when the stream ends.
      expect(ancestry(streamed.spans, one(streamed.spans, "ringmaster.escrow.cancel"))).toEqual([
        "ringmaster.escrow.cancel",
        "ringmaster.escrow.settle",
        "ringmaster.stream"
      ])
    }).pipe(Effect.provide(world(backend))))

  it.effect("an LLM agent's hires are delegates inside its own, under the model call that made them", () =>
    Effect.gen(function*() {
      const handle = yield* Orchestrator.spawn(fetcher)
      const script = yield* LanguageModelScript.make([
        LanguageModelScript.toolCall("fetcher", { topic: "rates" }),
        LanguageModelScript.text("Rates rose.")
      ])
      const planner = yield* Orchestrator.spawn(
        Agent.llm({
          name: "planner",
          instructions: "Report.",
          tools: [handle],
          maxPrice: Usdc.make("0.01"),
          pricing: { microsPerInputToken: 1n, microsPerOutputToken: 1n },
          model: script.layer
        })
      )
      yield* Effect.flatMap(Accounts, (accounts) => accounts.deposit(planner.wallet, Usdc.make("10")))
      const { spans } = yield* traced(Orchestrator.delegate(planner, { prompt: "Rates?" }))
      const delegates = named(spans, "ringmaster.delegate")
      expect(delegates.map((d) => d.attributes["ringmaster.agent.name"]).sort()).toEqual(["fetcher", "planner"])
      const hire = delegates.find((d) => d.attributes["ringmaster.agent.name"] === "fetcher")!
      expect(hire.attributes["ringmaster.outcome"]).toBe("paid")
      expect(ancestry(spans, hire)).toEqual([
        "ringmaster.delegate",
        "Toolkit.handle",
        "LanguageModel.generateText",
        "ringmaster.delegate"
      ])
    }).pipe(Effect.provide(world(backend))))
})
