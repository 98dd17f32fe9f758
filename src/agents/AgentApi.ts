/**
 * The HTTP contract between an orchestrator and a remote agent service: one
 * `HttpApi`, implemented by `RemoteAgent.layerServer` and called through the client
 * derived from it by `RemoteAgent.remote`.
 *
 *   GET  /agents/{name}         who the agent is and what it charges
 *   POST /agents/{name}/tasks   {escrow_id, input} → {agent, escrow_id, output}
 *
 * The caller opens an escrow to the agent's wallet first and passes its id; the
 * agent verifies it through its settlement service before doing any work (402
 * `EscrowRefused` otherwise). Input and output travel as JSON in the encoded form
 * of the agent's own schemas.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { InvalidInput } from "../domain/errors.js"
import { WalletAddress } from "../domain/ids.js"
import { Limits } from "../domain/limits.js"
import { EscrowRefused, RemoteTaskFailed } from "./errors.js"

/** What an agent's name must be, as its refusal says it. */
export const agentNameRule = `expected an agent name of 1-${Limits.agentNameChars} letters, digits, '.', '_' or '-'`

export const AgentName = Schema.String.pipe(
  Schema.pattern(new RegExp(`^[A-Za-z0-9._-]{1,${Limits.agentNameChars}}$`), { message: () => agentNameRule })
)

/** The longest escrow id accepted on the wire; real ones are about 31 characters. */
export const MAX_ESCROW_ID_CHARS = 64

export const AgentDescription = Schema.Struct({
  name: Schema.String,
  agent_id: Schema.String,
  wallet_address: WalletAddress,
  referral_code: Schema.String,
  referrer: Schema.NullOr(Schema.String),
  pricing: Schema.Literal("fixed"),
  /** The price when it does not depend on the input. */
  price_usdc: Schema.NullOr(Schema.String)
})
export type AgentDescription = typeof AgentDescription.Type

export const TaskRequest = Schema.Struct({
  escrow_id: Schema.String.pipe(Schema.maxLength(MAX_ESCROW_ID_CHARS)),
  input: Schema.Unknown
})

export const TaskResult = Schema.Struct({
  agent: Schema.String,
  escrow_id: Schema.String,
  output: Schema.Unknown
})

/** The service does not serve an agent of that name. */
export class AgentNotServed extends Schema.TaggedError<AgentNotServed>()("AgentNotServed", {
  name: Schema.String
}) {
  override get message() {
    return `no agent named ${this.name} is served here`
  }
}

const nameParam = HttpApiSchema.param("name", AgentName)

export class AgentsGroup extends HttpApiGroup.make("agents")
  .add(
    HttpApiEndpoint.get("describe")`/agents/${nameParam}`
      .addSuccess(AgentDescription)
      .addError(AgentNotServed, { status: 404 })
  )
  .add(
    HttpApiEndpoint.post("runTask")`/agents/${nameParam}/tasks`
      .setPayload(TaskRequest)
      .addSuccess(TaskResult)
      .addError(AgentNotServed, { status: 404 })
      .addError(InvalidInput, { status: 400 })
      .addError(EscrowRefused, { status: 402 })
      .addError(RemoteTaskFailed, { status: 502 })
  ) {}

export class AgentApi extends HttpApi.make("ringmaster-agent").add(AgentsGroup) {}
