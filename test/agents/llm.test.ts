/**
 * LLM agents (`Agent.llm`) driven by a scripted model: the model's tool calls decide
 * whom the agent hires, every hire is an escrow from the agent's wallet, refusals
 * and failures come back to the model as tool errors, and the model's tokens are
 * billed to whoever hired the agent.
 */
import { LanguageModel } from "@effect/ai"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import { Accounts } from "../../src/agents/Accounts.js"
import * as Agent from "../../src/agents/AgentNamespace.js"
import { TurnLimitReached } from "../../src/agents/llm/errors.js"
import * as LanguageModelScript from "../../src/agents/llm/LanguageModelScript.js"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import type { Handle } from "../../src/agents/Orchestrator.js"
import { InvalidInput } from "../../src/domain/errors.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { backends, failing, Facts, feeOf, fetcher, shareOf, Text, Topic, u, world } from "./support.js"

const writer = Agent.make({
  name: "writer",
  input: Facts,
  output: Text,
  price: Usdc.make("1"),
  run: ({ facts }) => Effect.succeed({ text: facts.join(". ") })
})

/** 1 µUSDC per prompt token, 4 per completion token. */
const pricing = { microsPerInputToken: 1n, microsPerOutputToken: 4n }
const usage = (inputTokens: number, outputTokens: number) => ({ inputTokens, outputTokens })

const balanceOf = (wallet: string) =>
  Effect.flatMap(Ledger, (ledger) => Effect.map(ledger.balance(wallet as never), (b) => ({ available: b.available as bigint, locked: b.locked as bigint })))

/** Every escrow in the ledger as `payer→payee amount status released`, by name. */
const edges = Effect.gen(function*() {
  const ledger = yield* Ledger
  const { escrows } = yield* ledger.listEscrows({ limit: 500 })
  const names = new Map<string, string>()
  for (const escrow of escrows) {
    for (const wallet of [escrow.payer, escrow.payee]) {
      if (!names.has(wallet)) names.set(wallet, (yield* ledger.getAgent(wallet)).name)
    }
  }
  return escrows
    .map((e) => `${names.get(e.payer)}→${names.get(e.payee)} ${Usdc.format(e.amount)} ${e.status} ${Usdc.format(e.released)}`)
    .sort()
})

const verified = Effect.flatMap(Ledger, (ledger) => Effect.map(ledger.verify, (r) => expect(r.violations).toEqual([])))

/** Spawns the sub-agents, then a planner that may hire them, funded with 10 USDC of its own. */
const setUp = (options: { readonly budget?: Agent.LlmOptions<any, any, any>["budget"]; readonly maxTurns?: number } = {}) =>
  Effect.gen(function*() {
    const handles = {
      fetcher: yield* Orchestrator.spawn(fetcher),
      writer: yield* Orchestrator.spawn(writer),
      failing: yield* Orchestrator.spawn(failing)
    }
    const planner = yield* Orchestrator.spawn(Agent.llm({
      name: "planner",
      instructions: "Write a market note. Hire the agents you need.",
      tools: [handles.fetcher, handles.writer, handles.failing],
      budget: options.budget,
      maxTurns: options.maxTurns,
      maxPrice: Usdc.make("0.01"),
      pricing
    }))
    yield* Effect.flatMap(Accounts, (accounts) => accounts.deposit(planner.wallet, Usdc.make("10")))
    return { ...handles, planner }
  })

const ask = (planner: Handle<Agent.Agent<Agent.LlmInput, Agent.LlmOutput, any, any>>, script: LanguageModelScript.Script) =>
  Orchestrator.delegate(planner, { prompt: "What did rates do?" }).pipe(Effect.provide(script.layer))

for (const backend of backends) {
  describe(`Agent.llm on ${backend.name}`, () => {
    it.effect("the model decides whom to hire: each script pays a different agent from the planner's wallet", () =>
      Effect.gen(function*() {
        const { fetcher, planner, writer } = yield* setUp()
        const script = yield* LanguageModelScript.make([
          LanguageModelScript.toolCall("fetcher", { topic: "rates" }, usage(100, 20)),
          LanguageModelScript.text("Rates rose, then fell.", usage(150, 10))
        ])
        const { text } = yield* ask(planner, script)
        expect(text).toBe("Rates rose, then fell.")
        // The model was offered one tool per sub-agent, and read the fetcher's output.
        const calls = yield* script.calls
        expect(calls.map((c) => c.tools)).toEqual([["fetcher", "writer", "failing"], ["fetcher", "writer", "failing"]])
        expect(LanguageModelScript.lastToolResults(calls[1]!.prompt)).toEqual([
          { name: "fetcher", result: { facts: ["rates rose", "rates fell"] }, isFailure: false }
        ])
        // Tokens: 100 + 4·20 + 150 + 4·10 = 370 µUSDC billed to the orchestrator; 2.5 paid to the fetcher.
        const tokens = 370n
        expect(yield* balanceOf(planner.wallet)).toEqual({ available: u("10") - u("2.5") + tokens - feeOf(tokens), locked: 0n })
        expect(yield* balanceOf(fetcher.wallet)).toEqual({ available: u("2.5") - feeOf(u("2.5")), locked: 0n })
        expect(yield* balanceOf(writer.wallet)).toEqual({ available: 0n, locked: 0n })

        // Another script, another choice: the writer is paid, the fetcher is not hired again.
        const second = yield* LanguageModelScript.make([
          LanguageModelScript.toolCall("writer", { facts: ["rates rose"] }),
          LanguageModelScript.text("Done.")
        ])
        expect(yield* ask(planner, second)).toEqual({ text: "Done." })
        expect(yield* balanceOf(writer.wallet)).toEqual({ available: u("1") - feeOf(u("1")), locked: 0n })
        expect(yield* balanceOf(fetcher.wallet)).toEqual({ available: u("2.5") - feeOf(u("2.5")), locked: 0n })
        expect(yield* edges).toEqual([
          "orchestrator→planner 0.010000 cancelled 0.000000", // the second task reported no tokens: nothing billed
          "orchestrator→planner 0.010000 cancelled 0.000370", // 370 µUSDC of tokens paid, the rest refunded
          "planner→fetcher 2.500000 released 2.500000",
          "planner→writer 1.000000 released 1.000000"
        ])
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("a hire over budget is refused before any lock, and the model reads the refusal", () =>
      Effect.gen(function*() {
        const { fetcher, planner } = yield* setUp({ budget: { perTask: Usdc.make("1") } })
        const script = yield* LanguageModelScript.make([
          LanguageModelScript.toolCall("fetcher", { topic: "rates" }),
          (prompt) => {
            const [result] = LanguageModelScript.lastToolResults(prompt)
            return LanguageModelScript.text(result?.isFailure === true ? "Could not afford the data." : "Unexpected.")
          }
        ])
        expect(yield* ask(planner, script)).toEqual({ text: "Could not afford the data." })
        const [, second] = yield* script.calls
        const [refusal] = LanguageModelScript.lastToolResults(second!.prompt)
        expect(refusal).toMatchObject({ name: "fetcher", isFailure: true, result: { agent: "fetcher", error: "BudgetExceeded" } })
        expect((refusal!.result as { message: string }).message).toMatch(/per-task/)
        // Nothing was locked for the fetcher: the only escrow is the orchestrator's hire of the planner.
        expect(yield* edges).toEqual(["orchestrator→planner 0.010000 cancelled 0.000000"])
        expect(yield* balanceOf(planner.wallet)).toEqual({ available: u("10"), locked: 0n })
        expect(yield* balanceOf(fetcher.wallet)).toEqual({ available: 0n, locked: 0n })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("the budget caps each task's hires together: over perRun is refused, and the next task starts afresh", () =>
      Effect.gen(function*() {
        const { planner } = yield* setUp({ budget: { perRun: Usdc.make("3") } })
        const script = yield* LanguageModelScript.make([
          LanguageModelScript.toolCalls([{ name: "fetcher", params: { topic: "rates" } }, { name: "writer", params: { facts: ["a"] } }]),
          LanguageModelScript.text("Half done."),
          LanguageModelScript.toolCall("writer", { facts: ["b"] }),
          LanguageModelScript.text("Done.")
        ])
        yield* ask(planner, script)
        // 2.5 paid to the fetcher, so the writer's 1 would bring the task to 3.5 > 3.
        const calls = yield* script.calls
        expect(LanguageModelScript.lastToolResults(calls[1]!.prompt).map((r) => [r.name, r.isFailure])).toEqual([["fetcher", false], ["writer", true]])
        yield* ask(planner, script)
        expect(LanguageModelScript.lastToolResults((yield* script.calls)[3]!.prompt).map((r) => [r.name, r.isFailure])).toEqual([["writer", false]])
        expect(yield* edges).toEqual([
          "orchestrator→planner 0.010000 cancelled 0.000000",
          "orchestrator→planner 0.010000 cancelled 0.000000",
          "planner→fetcher 2.500000 released 2.500000",
          "planner→writer 1.000000 released 1.000000"
        ])
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("a failed hire is refunded to the planner and reported to the model, which hires another agent", () =>
      Effect.gen(function*() {
        const { failing, fetcher, planner } = yield* setUp()
        const script = yield* LanguageModelScript.make([
          LanguageModelScript.toolCall("failing", { topic: "rates" }),
          (prompt) =>
            LanguageModelScript.lastToolResults(prompt)[0]?.isFailure === true
              ? LanguageModelScript.toolCall("fetcher", { topic: "rates" })
              : LanguageModelScript.text("Unexpected."),
          LanguageModelScript.text("Rates rose.")
        ])
        expect(yield* ask(planner, script)).toEqual({ text: "Rates rose." })
        const [, second] = yield* script.calls
        expect(LanguageModelScript.lastToolResults(second!.prompt)).toEqual([
          { name: "failing", isFailure: true, result: { agent: "failing", error: "WriterBusy", message: expect.any(String) } }
        ])
        expect(yield* edges).toEqual([
          "orchestrator→planner 0.010000 cancelled 0.000000",
          "planner→failing 3.000000 cancelled 0.000000",
          "planner→fetcher 2.500000 released 2.500000"
        ])
        expect(yield* balanceOf(planner.wallet)).toEqual({ available: u("10") - u("2.5"), locked: 0n })
        expect(yield* balanceOf(failing.wallet)).toEqual({ available: 0n, locked: 0n })
        expect(yield* balanceOf(fetcher.wallet)).toEqual({ available: u("2.5") - feeOf(u("2.5")), locked: 0n })
        yield* verified
      }).pipe(Effect.provide(world(backend))))

    it.effect("a model that never answers stops at maxTurns: its own escrow is refunded, its hires stay paid", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const { planner } = yield* setUp({ maxTurns: 2 })
        const before = yield* balanceOf(orchestrator.identity.wallet)
        const script = yield* LanguageModelScript.make([
          LanguageModelScript.toolCall("fetcher", { topic: "a" }, usage(10, 0)),
          LanguageModelScript.toolCall("fetcher", { topic: "b" }, usage(10, 0))
        ])
        const error = yield* Effect.flip(ask(planner, script))
        expect(error).toEqual(new TurnLimitReached({ agent: "planner", turns: 2 }))
        // Nothing paid for the planner's tokens. The orchestrator referred both parties of each hire
        // (planner and fetcher), so it earned two referral shares of each hire's fee.
        expect(yield* balanceOf(orchestrator.identity.wallet)).toEqual({ ...before, available: before.available + 2n * 2n * shareOf(u("2.5")) })
        expect(yield* balanceOf(planner.wallet)).toEqual({ available: u("10") - 2n * u("2.5"), locked: 0n })
        yield* verified
      }).pipe(Effect.provide(world(backend))))
  })
}

describe("Agent.llm definitions", () => {
  it.effect("takes its model as an option, and a struct-less input as { input }", () =>
    Effect.gen(function*() {
      const echo = Agent.make({
        name: "echo",
        input: Schema.String,
        output: Schema.String,
        price: Usdc.make("0.5"),
        run: (s) => Effect.succeed(s.toUpperCase())
      })
      const handle = yield* Orchestrator.spawn(echo)
      const script = yield* LanguageModelScript.make([
        LanguageModelScript.toolCall("echo", { input: "hi" }),
        (prompt) => LanguageModelScript.text(String(LanguageModelScript.lastToolResults(prompt)[0]?.result))
      ])
      const planner = yield* Orchestrator.spawn(
        Agent.llm({ name: "shouter", instructions: "Shout.", tools: [handle], maxPrice: Usdc.make("0.01"), pricing, model: script.layer }),
        { faucet: true }
      )
      expect(yield* Orchestrator.delegate(planner, { prompt: "hi" })).toEqual({ text: "HI" })
      expect(yield* balanceOf(handle.wallet)).toEqual({ available: u("0.5") - feeOf(u("0.5")), locked: 0n })
    }).pipe(Effect.provide(world(backends[0]!))))

  it.effect("refuses two sub-agents with one tool name, and a negative budget, at definition time", () =>
    Effect.gen(function*() {
      const a = yield* Orchestrator.spawn(Agent.make({ name: "data fetcher", input: Topic, output: Facts, price: 1n as Usdc.Usdc, run: () => Effect.succeed({ facts: [] }) }))
      const b = yield* Orchestrator.spawn(Agent.make({ name: "data_fetcher", input: Topic, output: Facts, price: 1n as Usdc.Usdc, run: () => Effect.succeed({ facts: [] }) }))
      const define = (options: Partial<Agent.LlmOptions<any, never, never>>) => () =>
        Agent.llm({ name: "p", instructions: "", tools: [a], maxPrice: Usdc.make("1"), pricing, ...options })
      expect(define({ tools: [a, b] })).toThrow(new InvalidInput({ field: "tools", message: "two sub-agents share the tool name data_fetcher" }))
      expect(define({ budget: { perRun: -1n as Usdc.Usdc } })).toThrow(new InvalidInput({ field: "budget.perRun", message: "must not be negative" }))
      expect(define({ maxTurns: 0 })).toThrow(InvalidInput)
    }).pipe(Effect.provide(world(backends[0]!))))
})

describe("LanguageModelScript", () => {
  it.effect("replays one reply per call, generated or streamed, records each prompt, and refuses a call past the end", () =>
    Effect.gen(function*() {
      const script = yield* LanguageModelScript.make([
        LanguageModelScript.text("one", usage(3, 1)),
        (prompt) => LanguageModelScript.text(`${prompt.content.length} message(s)`)
      ])
      yield* Effect.gen(function*() {
        const first = yield* LanguageModel.generateText({ prompt: "a" })
        expect([first.text, first.usage.inputTokens, first.usage.outputTokens, first.finishReason]).toEqual(["one", 3, 1, "stop"])
        const streamed = yield* Stream.runCollect(LanguageModel.streamText({ prompt: "b" }))
        expect([...streamed].flatMap((part) => part.type === "text-delta" ? [part.delta] : [])).toEqual(["1 message(s)"])
        const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "c" }))
        expect(error.message).toBe("LanguageModelScript.generateText: the script has 2 replies, and call 3 was made")
      }).pipe(Effect.provide(script.layer))
      const calls = yield* script.calls
      expect(calls.map((c) => c.prompt.content.map((m) => m.role))).toEqual([["user"], ["user"]])
    }))
})
