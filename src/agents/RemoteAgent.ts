/**
 * Agents across services. The caller's side: `remote(...)`, an `Agent` whose `run`
 * posts the task with its escrow id to another ringmaster service. The agent's
 * side: `layerServer(...)`, serving local agents over `AgentApi`, each task only
 * after `verifyEscrow` has checked, through the settlement service, that the
 * escrow is pending, pays this agent, covers its price, is not about to expire,
 * and was not used for another task.
 *
 * Who pays whom does not change across the wire: the caller is the payer and
 * releases on a valid output (its `Escrow.scoped`); the agent, as payee, cancels
 * the escrow itself when its `run` fails, or when it refuses an escrow that pays it
 * too little or expires too soon, so the caller is refunded at once (the settlement
 * service lets a payer cancel only after the deadline, by default).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Cause, Clock, Duration, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import { createServer } from "node:http"
import { InvalidInput } from "../domain/errors.js"
import { type AgentRecord, type EscrowRecord, remaining } from "../domain/Escrow.js"
import { EscrowId, type WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"
import { Escrow, type EscrowShape } from "../escrow/Escrow.js"
import * as Agent from "./Agent.js"
import { AgentApi, type AgentDescription, AgentName, agentNameRule, AgentNotServed } from "./AgentApi.js"
import { EscrowRefused, InvalidOutput, RemoteAgentUnavailable, RemoteTaskFailed } from "./errors.js"
import { Orchestrator } from "./orchestrator/contract.js"
import { BoundedMap } from "../domain/BoundedMap.js"

// ---------------------------------------------------------------------------
// Verification (the agent's side), against any `Escrow` port

export interface VerifyOptions {
  /** The escrow must still have this long before its deadline; default 5,000 ms. */
  readonly minRemainingMs?: number | undefined
}

/**
 * Remembers escrow ids already used for a task, so one escrow buys one task. A
 * bounded map in insertion order: the oldest ids are forgotten first, which is
 * safe because an escrow that old has been settled (and so is refused as not
 * pending) or has expired.
 */
export class ReplayGuard {
  private readonly ids: BoundedMap<string, true>
  constructor(readonly capacity: number = 100_000) {
    this.ids = new BoundedMap(capacity)
  }

  /** Claims `id`; false when it was already claimed. */
  claim(id: string): boolean {
    if (this.ids.has(id)) return false
    this.ids.set(id, true)
    return true
  }
  /** Gives a claim back (verification refused the escrow: no work was done for it). */
  release(id: string): void {
    this.ids.delete(id)
  }
}

const refuse = (escrowId: string, reason: EscrowRefused["reason"], message: string) =>
  Effect.fail(new EscrowRefused({ escrowId, reason, message }))

/**
 * Checks an offered escrow before any work: it must exist, be pending, pay
 * `payee`, hold at least `price`, not be about to expire, and not have bought a
 * task already. The id is claimed in `guard` while checking, so two concurrent
 * requests with one escrow cannot both pass.
 */
export const verifyEscrow = (
  escrow: EscrowShape,
  guard: ReplayGuard,
  offered: { readonly escrowId: string; readonly payee: WalletAddress; readonly price: Usdc.Usdc },
  options: VerifyOptions = {}
): Effect.Effect<EscrowRecord, EscrowRefused> =>
  Effect.gen(function*() {
    const { escrowId, payee, price } = offered
    const id = Schema.decodeUnknownOption(EscrowId)(escrowId)
    if (Option.isNone(id)) return yield* refuse(escrowId, "malformed", "not an escrow id")
    if (!guard.claim(id.value)) return yield* refuse(escrowId, "replayed", "this escrow already paid for a task")
    const checked = yield* Effect.gen(function*() {
      const found = yield* Effect.either(escrow.get(id.value))
      if (Either.isLeft(found)) {
        return yield* found.left._tag === "EscrowNotFound"
          ? refuse(escrowId, "not_found", "no such escrow")
          : refuse(escrowId, "unverifiable", `the settlement service could not confirm it: ${found.left.message}`)
      }
      const record = found.right
      if (record.status !== "pending") return yield* refuse(escrowId, "not_pending", `it is ${record.status}`)
      if (record.payee !== payee) return yield* refuse(escrowId, "wrong_payee", "it pays another wallet")
      const held = remaining(record)
      if (held < price) {
        return yield* refuse(escrowId, "underfunded", `it holds ${Usdc.format(held)} USDC, the price is ${Usdc.format(price)}`)
      }
      const nowMs = yield* Clock.currentTimeMillis
      const minRemainingMs = options.minRemainingMs ?? 5_000
      if (record.expiresAtMs - nowMs < minRemainingMs) {
        return yield* refuse(escrowId, "expiring", `it expires in ${record.expiresAtMs - nowMs} ms`)
      }
      return record
    }).pipe(Effect.onError(() => Effect.sync(() => guard.release(id.value))))
    return checked
  })

// ---------------------------------------------------------------------------
// Serving (the agent's side)

export interface ServeOptions extends VerifyOptions {
  /** The identity the agents are paid at: the escrow's payee must be this wallet. */
  readonly identity: AgentRecord
  /** Longest a task may run, bounded by its escrow's deadline as well; default 300,000 ms. */
  readonly maxTaskMs?: number | undefined
  /** Request bodies above this are refused; default 1 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** Escrow ids remembered against replay; default 100,000. */
  readonly replayCapacity?: number | undefined
}

/** Refusals of a pending escrow that pays this agent: the ones it cancels, refunding the caller at once. */
const refusedButOurs: ReadonlySet<EscrowRefused["reason"]> = new Set(["underfunded", "expiring"])

type AgentRequirements<A> = A extends Agent.Agent<any, any, any, infer R> ? R : never

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
  }
  return Cause.isInterruptedOnly(cause) ? "interrupted" : "the agent crashed"
}

/** The `AgentApi` handlers for `agents`, paid at `options.identity`, verifying escrows through `Escrow`. */
export const handlers = <const Agents extends ReadonlyArray<Agent.Agent<any, any, any, any>>>(
  agents: Agents,
  options: ServeOptions
) => {
  const byName = new Map<string, Agent.Agent<any, any, any, any>>()
  for (const agent of agents) {
    if (agent.pricing._tag !== "Fixed") {
      throw new InvalidInput({ field: "agents", message: `${agent.name}: only fixed-price agents can be served remotely` })
    }
    byName.set(agent.name, agent)
  }
  const identity = options.identity
  const maxTaskMs = options.maxTaskMs ?? 300_000
  const guard = new ReplayGuard(options.replayCapacity)

  return HttpApiBuilder.group(AgentApi, "agents", (group) =>
    group
      .handle("describe", ({ path }) => {
        const agent = byName.get(path.name)
        if (agent === undefined || agent.pricing._tag !== "Fixed") return Effect.fail(new AgentNotServed({ name: path.name }))
        return Effect.succeed({
          name: agent.name,
          agent_id: identity.agentId,
          wallet_address: identity.wallet,
          referral_code: identity.referralCode,
          referrer: identity.referrer,
          pricing: "fixed" as const,
          price_usdc: agent.pricing.listPrice === undefined ? null : Usdc.format(agent.pricing.listPrice)
        } satisfies AgentDescription)
      })
      .handle("runTask", ({ path, payload }) =>
        Effect.gen(function*() {
          const agent = byName.get(path.name)
          if (agent === undefined || agent.pricing._tag !== "Fixed") return yield* new AgentNotServed({ name: path.name })
          const input = yield* Agent.decodeInput(agent.input, payload.input)
          const price = yield* Agent.checkPrice("price", agent.pricing.price(input))
          const escrow = yield* Escrow
          const record = yield* verifyEscrow(escrow, guard, { escrowId: payload.escrow_id, payee: identity.wallet, price }, options).pipe(
            Effect.tapError((refused) =>
              // A pending escrow that pays this agent but too little, or for too short a time:
              // it will buy nothing here, so refund the caller now, as its payee may (the payer
              // may only after the deadline). Others are not this agent's to settle.
              refusedButOurs.has(refused.reason)
                ? escrow.cancel(refused.escrowId as EscrowId).pipe(
                  Effect.tap(() => Effect.logInfo("escrow refused and cancelled", { escrowId: refused.escrowId, reason: refused.reason })),
                  Effect.ignore
                )
                : Effect.void
            )
          )
          const nowMs = yield* Clock.currentTimeMillis
          const budgetMs = Math.max(1, Math.min(maxTaskMs, record.expiresAtMs - nowMs - 1_000))
          const task: Agent.Task = {
            escrowId: record.id,
            payer: record.payer,
            self: identity,
            lockedMicros: record.amount,
            restarts: 0,
            charge: () => Effect.dieMessage(`charge() called by ${agent.name}, a fixed-price agent`),
            used: Effect.succeed(Usdc.zero)
          }
          const output = yield* agent.run(input, task).pipe(
            Effect.timeoutFail({ duration: Duration.millis(budgetMs), onTimeout: () => `no result within ${budgetMs} ms` }),
            Effect.flatMap((out) => Schema.encode(agent.output)(out)),
            Effect.sandbox,
            Effect.catchAll((cause) =>
              // Refund the caller now rather than at the deadline: the payee may always cancel.
              escrow.cancel(record.id).pipe(
                Effect.ignore,
                Effect.zipRight(Effect.logWarning("remote task failed; escrow cancelled", { agent: agent.name, escrowId: record.id })),
                Effect.zipRight(Effect.fail(new RemoteTaskFailed({ agent: agent.name, message: describeCause(cause) })))
              )
            )
          )
          return { agent: agent.name, escrow_id: record.id, output }
        }) as Effect.Effect<
          { agent: string; escrow_id: string; output: unknown },
          AgentNotServed | InvalidInput | EscrowRefused | RemoteTaskFailed,
          Escrow | AgentRequirements<Agents[number]>
        >)
  )
}

export interface ListenOptions {
  /** The port to listen on; 0 takes any free one (read it with `baseUrl`). The address is logged at start. */
  readonly port: number
  /** Default `127.0.0.1` (this host only); `0.0.0.0` to be reachable from others. */
  readonly host?: string | undefined
}

/**
 * Serves `agents` over HTTP on `port`, paid at `identity`; needs the `Escrow` port
 * (the settlement service, with the key of `identity`'s wallet, or the local ledger)
 * and whatever the agents' `run` needs (e.g. an `Orchestrator` for their own hiring).
 * Without `identity`, the agents are paid at the `Orchestrator`'s own wallet: with
 * `Ringmaster.remote(...)` provided, that is the wallet its key belongs to.
 */
export function layerServer<const Agents extends ReadonlyArray<Agent.Agent<any, any, any, any>>>(
  agents: Agents,
  options: ServeOptions & ListenOptions
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Escrow | AgentRequirements<Agents[number]>>
export function layerServer<const Agents extends ReadonlyArray<Agent.Agent<any, any, any, any>>>(
  agents: Agents,
  options: Omit<ServeOptions, "identity"> & ListenOptions
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Escrow | Orchestrator | AgentRequirements<Agents[number]>>
export function layerServer<const Agents extends ReadonlyArray<Agent.Agent<any, any, any, any>>>(
  agents: Agents,
  options: Omit<ServeOptions, "identity"> & { readonly identity?: AgentRecord | undefined } & ListenOptions
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Escrow | Orchestrator | AgentRequirements<Agents[number]>> {
  const { identity } = options
  return identity === undefined
    ? Layer.unwrapEffect(Effect.map(Orchestrator, (self) => serve(agents, { ...options, identity: self.identity })))
    : serve(agents, { ...options, identity })
}

const serve = <const Agents extends ReadonlyArray<Agent.Agent<any, any, any, any>>>(
  agents: Agents,
  options: ServeOptions & ListenOptions
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Escrow | AgentRequirements<Agents[number]>> => {
  const limit = Option.some(options.maxBodyBytes ?? 1_048_576)
  return HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.middleware((app) => HttpIncomingMessage.withMaxBodySize(app, limit))),
    Layer.provide(HttpApiBuilder.api(AgentApi).pipe(Layer.provide(handlers(agents, options)))),
    HttpServer.withLogAddress,
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: options.port, host: options.host ?? "127.0.0.1" }))
  )
}

/** The server's address, e.g. `http://127.0.0.1:41234`. */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag !== "TcpAddress") throw new Error("the agent server is not on TCP")
  return `http://${address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname}:${address.port}`
})

// ---------------------------------------------------------------------------
// Calling (the orchestrator's side)

export interface RemoteOptions<I, IE, O, OE> {
  /** The name the remote service serves the agent under. */
  readonly name: string
  /** The service, e.g. `http://reasoner.internal:8080` on Fly's private network. */
  readonly url: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Schema.Schema<O, OE>
  /** What to lock: the remote refuses an escrow below its own price. */
  readonly price: Agent.Price<I>
}

export type RemoteError = EscrowRefused | InvalidInput | RemoteTaskFailed | RemoteAgentUnavailable | InvalidOutput

const checkUrl = (url: string): string => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidInput({ field: "url", message: `not a URL: ${url.slice(0, 200)}` })
  }
  if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || url.length > 2_000) {
    throw new InvalidInput({ field: "url", message: "expected an http(s) URL of at most 2,000 characters" })
  }
  return url.replace(/\/+$/, "")
}

/**
 * An agent served by another ringmaster service. Spawning it asks the service for
 * the wallet it is paid at; delegating to it locks `price` in an escrow to that
 * wallet and posts the escrow id with the input.
 */
export const remote = <I, IE, O, OE>(options: RemoteOptions<I, IE, O, OE>): Agent.Agent<I, O, RemoteError> => {
  const url = checkUrl(options.url)
  if (!Schema.is(AgentName)(options.name)) throw new InvalidInput({ field: "name", message: agentNameRule })
  const name = options.name
  const unavailable = (error: unknown) =>
    new RemoteAgentUnavailable({
      agent: name,
      url,
      message: typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
    })
  // The derived client over the platform's fetch (undici's keep-alive pool).
  const client = HttpApiClient.make(AgentApi, { baseUrl: url }).pipe(Effect.provide(FetchHttpClient.layer))
  const encodeInput = Schema.encode(options.input)
  const decodeOutput = Schema.decodeUnknown(options.output)

  const run = (input: I, task: Agent.Task): Effect.Effect<O, RemoteError> =>
    Effect.gen(function*() {
      const wireInput = yield* Effect.mapError(encodeInput(input), (e) => new InvalidInput({ field: "input", message: e.message }))
      const api = yield* client
      const reply = yield* api.agents.runTask({ path: { name }, payload: { escrow_id: task.escrowId, input: wireInput } }).pipe(
        Effect.catchAll((error): Effect.Effect<never, RemoteError> => {
          const tag = (error as { _tag?: string })._tag
          if (tag === "EscrowRefused" || tag === "InvalidInput" || tag === "RemoteTaskFailed") return Effect.fail(error as RemoteError)
          if (tag === "AgentNotServed") return Effect.fail(new RemoteTaskFailed({ agent: name, message: (error as AgentNotServed).message }))
          return Effect.fail(unavailable(error))
        })
      )
      return yield* Effect.mapError(
        decodeOutput(reply.output),
        (e) => new InvalidOutput({ agent: name, message: ParseResult.TreeFormatter.formatErrorSync(e) })
      )
    })

  const describe = Effect.flatMap(client, (api) => api.agents.describe({ path: { name } })).pipe(
    Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => "no answer within 10 s" }),
    Effect.map((d): AgentRecord => ({
      agentId: d.agent_id as AgentRecord["agentId"],
      name: d.name,
      wallet: d.wallet_address,
      referralCode: d.referral_code as AgentRecord["referralCode"],
      referrer: d.referrer as AgentRecord["referrer"],
      createdAtMs: 0
    })),
    Effect.mapError(unavailable)
  )

  return {
    [Agent.TypeId]: Agent.TypeId,
    _tag: "Agent",
    name,
    input: options.input,
    output: options.output,
    pricing: {
      _tag: "Fixed",
      price: typeof options.price === "function" ? options.price : () => options.price as Usdc.Usdc,
      listPrice: typeof options.price === "function" ? undefined : options.price
    },
    run,
    remote: { url, describe }
  }
}
