/**
 * Process one of two: a translator agent, served over HTTP and paid through the
 * settlement service. At its first start it registers its own agent there (its
 * wallet is the one callers pay), claims the faucet, and keeps its key in
 * ./data/translator-service.json; later starts read that file.
 *
 *   SETTLEMENT_URL=http://127.0.0.1:8080 PORT=8090 npx tsx examples/remote/agent-service.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { Agent, Usdc } from "ringmaster"
import { RemoteAgent, Ringmaster } from "ringmaster/http"

const Translator = Agent.make({
  name: "translator",
  input: Schema.Struct({ text: Schema.String.pipe(Schema.maxLength(1_000)) }),
  output: Schema.Struct({ text: Schema.String }),
  price: Usdc.make("0.25"),
  run: ({ text }) => Effect.succeed({ text: text.split(" ").reverse().join(" ") })
})

// This service's own identity on the settlement service: the wallet it is paid at,
// and the key it verifies each escrow with (and cancels a refused one with).
const Settlement = Ringmaster.remote({
  baseUrl: process.env.SETTLEMENT_URL ?? "http://127.0.0.1:8080",
  identityFile: "./data/translator-service.json",
  name: "translator-service"
})

// Paid at the identity above; 0 would take any free port. The address is logged at start.
const Service = RemoteAgent.layerServer([Translator], { port: Number(process.env.PORT ?? 8090) }).pipe(
  Layer.provide(Settlement)
)

Layer.launch(Service).pipe(NodeRuntime.runMain)
