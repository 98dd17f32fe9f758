/**
 * Agents: typed, priced units of work that an `Orchestrator` spawns and hires.
 *
 *   const writer = Agent.make({
 *     name: "writer",
 *     input: Schema.Struct({ facts: Schema.Array(Schema.String) }),
 *     output: Schema.Struct({ text: Schema.String }),
 *     price: Usdc.make("0.50"),
 *     run: ({ facts }) => Effect.succeed({ text: facts.join(" ") })
 *   })
 *
 * Three ways to be paid:
 * - fixed (`make`): the price (a constant or a function of the input) is locked and
 *   released in full when the output decodes;
 * - metered (`metered`): a maximum is locked; `run` reports usage with
 *   `task.charge`, a partial release pays what was used and the rest is refunded;
 * - streamed (`streaming`): a maximum is locked; each batch is paid by a partial
 *   release as it is delivered, and whatever was not delivered is refunded.
 *
 * An agent's `run` may use any service, including `Orchestrator` to hire further
 * agents: it is given an orchestrator for its own wallet.
 */
import { type Effect, Either, ParseResult, Schema, type Stream } from "effect"
import { InvalidInput } from "../domain/errors.js"
import type { ChargeExceedsMaximum, RemoteAgentUnavailable } from "./errors.js"
import type { AgentRecord } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"
import { Limits } from "../domain/limits.js"

export const TypeId: unique symbol = Symbol.for("ringmaster/Agent")
export type TypeId = typeof TypeId

/** Agent names are registered with the ledger, which bounds them to 200 characters. */
export const MAX_NAME_CHARS = Limits.agentNameChars

/** What `run` knows about the task it is doing. */
export interface Task {
  readonly escrowId: EscrowId
  /** Who locked the money. */
  readonly payer: WalletAddress
  /** The agent's own identity (wallet, referral code, referrer). */
  readonly self: AgentRecord
  /** What the escrow locked: the price, or the maximum of a metered or streamed task. */
  readonly lockedMicros: Usdc.Usdc
  /** Restarts so far within this task (0 on the first run). */
  readonly restarts: number
  /**
   * Metered agents: adds usage to the bill. A charge that would take the bill past
   * `lockedMicros` (the declared maximum) fails with `ChargeExceedsMaximum` and is
   * not added. On a fixed-price or streaming agent it is a defect to call.
   */
  readonly charge: (amount: Usdc.Usdc) => Effect.Effect<void, ChargeExceedsMaximum>
  /** Usage charged so far (metered agents). */
  readonly used: Effect.Effect<Usdc.Usdc>
}

export type Pricing<I> =
  | {
    readonly _tag: "Fixed"
    readonly price: (input: I) => Usdc.Usdc
    /** The price when it does not depend on the input. */
    readonly listPrice: Usdc.Usdc | undefined
  }
  | { readonly _tag: "Metered"; readonly maxPrice: (input: I) => Usdc.Usdc; readonly listPrice: Usdc.Usdc | undefined }

/** Where a remote agent lives; see `RemoteAgent.remote` (in `ringmaster/http`). */
export interface RemoteTarget {
  readonly url: string
  /** Asks the remote service who it is: the identity (wallet) it is paid at. */
  readonly describe: Effect.Effect<AgentRecord, RemoteAgentUnavailable>
}

/** A task agent: one input, one output, one escrow per task. */
export interface Agent<I, O, E = never, R = never> {
  readonly [TypeId]: TypeId
  readonly _tag: "Agent"
  readonly name: string
  readonly input: Schema.Schema<I, any>
  readonly output: Schema.Schema<O, any>
  readonly pricing: Pricing<I>
  readonly run: (input: I, task: Task) => Effect.Effect<O, E, R>
  /** Set for agents served by another ringmaster service: spawning one looks up its identity there. */
  readonly remote: RemoteTarget | undefined
}

/** A streaming agent: one input, a stream of batches, each paid on delivery. */
export interface StreamingAgent<I, O, E = never, R = never> {
  readonly [TypeId]: TypeId
  readonly _tag: "StreamingAgent"
  readonly name: string
  readonly input: Schema.Schema<I, any>
  /** The schema of one batch. */
  readonly output: Schema.Schema<O, any>
  /** Locked up front; delivery stops (with `BudgetExceeded`) before it would be exceeded. */
  readonly maxPrice: (input: I) => Usdc.Usdc
  readonly pricePerBatch: (batch: O) => Usdc.Usdc
  readonly run: (input: I, task: Task) => Stream.Stream<O, E, R>
  readonly remote: undefined
}

export type Any = Agent<any, any, any, any> | StreamingAgent<any, any, any, any>

export type Price<I> = Usdc.Usdc | ((input: I) => Usdc.Usdc)

const checkName = (name: string): string => {
  const trimmed = name.trim()
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_CHARS) {
    throw new InvalidInput({ field: "name", message: `agent name must be 1-${MAX_NAME_CHARS} characters` })
  }
  return trimmed
}

const checkConstant = (field: string, price: Usdc.Usdc) => {
  if (typeof price !== "bigint" || price <= 0n || price > Usdc.MAX_MICROS) {
    throw new InvalidInput({ field, message: `${field} must be greater than zero and at most ${Usdc.format(Usdc.MAX_MICROS)} USDC` })
  }
}

const toFunction = <I>(field: string, price: Price<I>): ((input: I) => Usdc.Usdc) => {
  if (typeof price === "function") return price
  checkConstant(field, price)
  return () => price
}

const constant = <I>(price: Price<I>): Usdc.Usdc | undefined => (typeof price === "function" ? undefined : price)

/** A fixed-price agent. Bad constant arguments (an empty name, a zero price) throw at definition time. */
export const make = <I, IE, O, OE, E = never, R = never>(options: {
  readonly name: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Schema.Schema<O, OE>
  readonly price: Price<I>
  readonly run: (input: I, task: Task) => Effect.Effect<O, E, R>
}): Agent<I, O, E, R> => ({
  [TypeId]: TypeId,
  _tag: "Agent",
  name: checkName(options.name),
  input: options.input,
  output: options.output,
  pricing: { _tag: "Fixed", price: toFunction("price", options.price), listPrice: constant(options.price) },
  run: options.run,
  remote: undefined
})

/**
 * A usage-priced agent (an LLM billed by tokens): `maxPrice` is locked, `run` calls
 * `task.charge(amount)` as it consumes, and on success a partial release pays what
 * was charged while the rest is refunded. A charge past the maximum fails with
 * `ChargeExceedsMaximum`: the payer is never billed beyond what it locked.
 */
export const metered = <I, IE, O, OE, E = never, R = never>(options: {
  readonly name: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Schema.Schema<O, OE>
  readonly maxPrice: Price<I>
  readonly run: (input: I, task: Task) => Effect.Effect<O, E, R>
}): Agent<I, O, E, R> => ({
  [TypeId]: TypeId,
  _tag: "Agent",
  name: checkName(options.name),
  input: options.input,
  output: options.output,
  pricing: { _tag: "Metered", maxPrice: toFunction("maxPrice", options.maxPrice), listPrice: constant(options.maxPrice) },
  run: options.run,
  remote: undefined
})

/**
 * A streaming agent: `maxPrice` is locked; each batch `run` emits is validated and
 * paid (`pricePerBatch`) by a partial release before the consumer receives it. A
 * consumer that stops early pays for what it received; the rest is refunded.
 */
export const streaming = <I, IE, O, OE, E = never, R = never>(options: {
  readonly name: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Schema.Schema<O, OE>
  readonly maxPrice: Price<I>
  readonly pricePerBatch: Usdc.Usdc | ((batch: O) => Usdc.Usdc)
  readonly run: (input: I, task: Task) => Stream.Stream<O, E, R>
}): StreamingAgent<I, O, E, R> => ({
  [TypeId]: TypeId,
  _tag: "StreamingAgent",
  name: checkName(options.name),
  input: options.input,
  output: options.output,
  maxPrice: toFunction("maxPrice", options.maxPrice),
  pricePerBatch: toFunction("pricePerBatch", options.pricePerBatch),
  run: options.run,
  remote: undefined
})

export const isAgent = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

// ---------------------------------------------------------------------------
// Validation shared by local and remote delegation

const firstIssue = (prefix: string, error: ParseResult.ParseError): { field: string; message: string } => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = issue?.path.map(String) ?? []
  return { field: [prefix, ...path].join("."), message: issue?.message ?? error.message }
}

/** Decodes a task's input, naming the offending field on failure. */
export const decodeInput = <I>(schema: Schema.Schema<I, any>, input: unknown): Either.Either<I, InvalidInput> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema)(input), (error) => new InvalidInput(firstIssue("input", error)))

/** Checks an in-process value against a schema's type side (refinements included). */
export const validateInput = <I>(schema: Schema.Schema<I, any>, input: unknown): Either.Either<I, InvalidInput> =>
  Either.mapLeft(Schema.validateEither(schema)(input), (error) => new InvalidInput(firstIssue("input", error)))

/** Describes why a value failed an output schema, for `InvalidOutput`. */
export const describeOutputError = (error: ParseResult.ParseError): string => {
  const { field, message } = firstIssue("output", error)
  return `${field}: ${message}`
}

/** A price computed from an input must be a positive amount in range. */
export const checkPrice = (field: string, price: bigint): Either.Either<Usdc.Usdc, InvalidInput> =>
  price > 0n && price <= Usdc.MAX_MICROS
    ? Either.right(price as Usdc.Usdc)
    : Either.left(new InvalidInput({ field, message: `${field} must be greater than zero and at most ${Usdc.format(Usdc.MAX_MICROS)} USDC, got ${Usdc.format(price)} USDC` }))
