/**
 * Process two of two: an orchestrator that hires the translator served by
 * `agent-service.ts`, paying it through escrow on the same settlement service. At
 * its first start it registers its own agent, claims the faucet (1 USDC) and keeps
 * its key in ./data/orchestrator.json.
 *
 *   SETTLEMENT_URL=http://127.0.0.1:8080 AGENT_URL=http://127.0.0.1:8090 npx tsx examples/remote/hire.ts
 */
import { Console, Effect, Schema } from "effect"
import { Orchestrator, Usdc } from "ringmaster"
import { RemoteAgent, Ringmaster } from "ringmaster/http"

// The caller's view of the agent: its name and URL, its schemas, what to lock.
const translator = RemoteAgent.remote({
  name: "translator",
  url: process.env.AGENT_URL ?? "http://127.0.0.1:8090",
  input: Schema.Struct({ text: Schema.String }),
  output: Schema.Struct({ text: Schema.String }),
  price: Usdc.make("0.25")
})

const program = Effect.gen(function*() {
  // Asks the agent service which wallet it is paid at.
  const handle = yield* Orchestrator.spawn(translator)
  // Locks 0.25 USDC to that wallet, posts the escrow id with the input, releases on a valid answer.
  const { text } = yield* Orchestrator.delegate(handle, { text: "escrow pays for work that arrives" }, { timeoutMs: 10_000 })
  const me = yield* Orchestrator.identity
  const { available } = yield* Effect.flatMap(Orchestrator, (o) => o.balance)
  yield* Console.log(`translated: ${text}`)
  yield* Console.log(`paid ${handle.wallet} for it; ${me.wallet} holds ${Usdc.format(available)} USDC`)
})

program.pipe(
  Effect.provide(
    Ringmaster.remote({ baseUrl: process.env.SETTLEMENT_URL ?? "http://127.0.0.1:8080", identityFile: "./data/orchestrator.json" })
  ),
  Effect.runPromise
).catch((error) => {
  console.error(error)
  process.exit(1)
})
