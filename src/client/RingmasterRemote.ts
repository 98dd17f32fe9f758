/**
 * The set-ups of `ringmaster/http`: `memory()` and `test()`, and
 * `remote({ baseUrl, ... })`, an orchestrator whose ledger is a settlement service.
 *
 * The service knows an agent by its wallet and authorizes it by its API key; the
 * key alone is enough, since `GET /api/agents/me` names the agent and wallet it
 * belongs to. `remote` finds the identity, in order:
 * 1. `apiKey` as given (from the agent's registration), its wallet asked of the
 *    service; with `wallet` too, the key must be that wallet's;
 * 2. `identityFile`, if it exists (written by an earlier start);
 * 3. otherwise it registers a new agent named `name` (referred by `referralCode`)
 *    and, with `identityFile`, writes the key and wallet there (mode 0600) for
 *    later starts.
 * Unless `faucet: false`, it then claims the faucet for a wallet that holds
 * nothing. What cannot be done fails the layer with `RemoteSetupFailed`, naming
 * what is missing.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer, Redacted, Schema } from "effect"
import { InvalidInput } from "../domain/errors.js"
import { WalletAddress } from "../domain/ids.js"
import type { Orchestrator } from "../agents/Orchestrator.js"
import { type OrchestratorSettings, orchestratorOver, type SetupError } from "../agents/Ringmaster.js"
import type { Accounts } from "../agents/Accounts.js"
import type { Escrow } from "../escrow/Escrow.js"
import * as AccountsHttp from "./AccountsHttp.js"
import * as SettlementClient from "./SettlementClient.js"

export * from "../agents/Ringmaster.js"

/** What `remote` could not find or do, and what to give it instead. */
export class RemoteSetupFailed extends Schema.TaggedError<RemoteSetupFailed>()("RemoteSetupFailed", {
  baseUrl: Schema.String,
  /** What is missing: the key (or a key of the given wallet), a valid wallet, a usable identity file, a registration, or funds. */
  missing: Schema.Literal("apiKey", "wallet", "identityFile", "registration", "funds"),
  message: Schema.String
}) {}

export interface RemoteOptions
  extends
    Omit<SettlementClient.SettlementClientOptions, "baseUrl">,
    Omit<OrchestratorSettings, "wallet" | "existing" | "deposit" | "faucet">
{
  /** The settlement service, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string
  /** The key of this process's agent; a plain string is wrapped in `Redacted` at once. The service names its wallet. */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /** Optional with `apiKey`: the wallet it was issued for, checked against the service's answer. */
  readonly wallet?: string | undefined
  /** Where the identity is kept between starts: read if present, written at the first start otherwise. */
  readonly identityFile?: string | undefined
  /** Claim the faucet for a wallet holding nothing (available and locked); default true. */
  readonly faucet?: boolean | undefined
  /** Keys of sub-agents registered by an earlier process, by wallet (see `AccountsHttp`). */
  readonly agentKeys?: Readonly<Record<string, Redacted.Redacted<string>>> | undefined
}

/** One agent's identity on one service: what `identityFile` holds. */
const StoredIdentity = Schema.Struct({
  base_url: Schema.String,
  agent_name: Schema.String,
  wallet_address: WalletAddress,
  api_key: Schema.Redacted(Schema.String)
})
type StoredIdentity = typeof StoredIdentity.Type
const IdentityJson = Schema.parseJson(StoredIdentity, { space: 2 })

const registerErrors = new Set(["InvalidInput", "WalletAlreadyRegistered", "ReferralCodeNotFound", "ReferralCycle", "LedgerUnavailable"])
const faucetErrors = new Set(["AgentNotFound", "FaucetAlreadyClaimed", "FaucetTreasuryEmpty", "FaucetDailyCapReached", "InvalidInput", "LedgerUnavailable"])
const readErrors = new Set(["LedgerUnavailable"])
const meErrors = new Set(["AgentNotFound", "LedgerUnavailable"])

const checkBaseUrl = (baseUrl: string): string => {
  const trimmed = baseUrl.replace(/\/+$/, "")
  let parsed: URL | undefined
  try {
    parsed = new URL(trimmed)
  } catch {
    parsed = undefined
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || trimmed.length > 2_000) {
    throw new InvalidInput({ field: "baseUrl", message: `expected an http(s) URL of at most 2,000 characters, got ${baseUrl.slice(0, 200)}` })
  }
  return trimmed
}

/**
 * An orchestrator on the settlement service at `baseUrl`: `Orchestrator`, and
 * `Accounts` and `Escrow` over HTTP on one pool, sharing the keys of the agents it
 * registers (so each escrow is settled as the party the service requires).
 */
export const remote = (options: RemoteOptions): Layer.Layer<Orchestrator | Accounts | Escrow, RemoteSetupFailed | SetupError> => {
  const { agentKeys, apiKey, faucet, identityFile, wallet, baseUrl, connectTimeout, readTimeout, maxConnections, retry, ...orchestrator } =
    options
  const key = typeof apiKey === "string" ? Redacted.make(apiKey) : apiKey
  return Layer.unwrapScoped(
    Effect.gen(function*() {
      const url = yield* Effect.try({ try: () => checkBaseUrl(baseUrl), catch: (e) => e as InvalidInput })
      const clientOptions = { baseUrl: url, connectTimeout, readTimeout, maxConnections, retry }
      const settlement = yield* SettlementClient.make("Ringmaster", clientOptions)
      const setup = new Setup(url, settlement)
      const identity = yield* setup.identity({
        apiKey: key,
        wallet,
        identityFile,
        name: orchestrator.name ?? "orchestrator",
        referralCode: orchestrator.referralCode
      })
      yield* setup.fund(identity, faucet ?? true)
      const ports = Layer.succeedContext(
        yield* AccountsHttp.makeWithEscrowOn({ ...clientOptions, apiKey: identity.api_key, agentKeys }, settlement)
      )
      return orchestratorOver({ ...orchestrator, name: identity.agent_name, existing: true, wallet: identity.wallet_address }, ports)
    })
  )
}

/** The steps of `remote`'s start, on one client pool. */
class Setup {
  constructor(readonly baseUrl: string, readonly settlement: SettlementClient.SettlementClient) {}

  private failed(missing: RemoteSetupFailed["missing"], message: string) {
    return new RemoteSetupFailed({ baseUrl: this.baseUrl, missing, message })
  }

  /** The agent's wallet and key: given, stored, or registered now (and stored). */
  identity(given: {
    readonly apiKey: Redacted.Redacted<string> | undefined
    readonly wallet: string | undefined
    readonly identityFile: string | undefined
    readonly name: string
    readonly referralCode: OrchestratorSettings["referralCode"]
  }): Effect.Effect<StoredIdentity, RemoteSetupFailed> {
    const self = this
    return Effect.gen(function*() {
      if (given.apiKey !== undefined) {
        const wallet = given.wallet === undefined ? undefined : yield* Schema.decodeUnknown(WalletAddress)(given.wallet.toLowerCase()).pipe(
          Effect.mapError(() => self.failed("wallet", `not a wallet address: ${given.wallet!.slice(0, 100)}`))
        )
        return yield* self.verified(given.apiKey, wallet)
      }
      if (given.wallet !== undefined) {
        return yield* self.failed("apiKey", `no API key for wallet ${given.wallet}: pass \`apiKey\`, the api_key its registration returned`)
      }
      if (given.identityFile !== undefined) {
        const stored = yield* self.read(given.identityFile)
        if (stored !== undefined) return yield* self.verified(stored.api_key, stored.wallet_address)
      }
      const registered = yield* self.register(given.name, given.referralCode)
      if (given.identityFile === undefined) {
        yield* Effect.logWarning("registered an agent for this run only: pass identityFile to keep its key for the next start", {
          wallet: registered.wallet_address
        })
      } else {
        yield* self.write(given.identityFile, registered)
      }
      return registered
    })
  }

  /**
   * The identity the service gives `apiKey` (`GET /api/agents/me`): its wallet and
   * the name it was registered with. With `expected`, the key must be that wallet's.
   */
  private verified(apiKey: Redacted.Redacted<string>, expected: WalletAddress | undefined): Effect.Effect<StoredIdentity, RemoteSetupFailed> {
    const { settlement } = this
    const self = this
    const which = expected === undefined ? "this API key" : `this key for wallet ${expected}`
    return Effect.gen(function*() {
      const client = yield* settlement.clientFor(apiKey)
      const me = yield* settlement.call<{ readonly agent_name: string; readonly wallet_address: WalletAddress }, { readonly message: string }>(
        "me",
        client.agents.me(),
        SettlementClient.isTransient,
        meErrors
      ).pipe(Effect.mapError((error) => self.failed("apiKey", `the service did not accept ${which}: ${error.message}`)))
      if (expected !== undefined && me.wallet_address !== expected) {
        return yield* self.failed(
          "apiKey",
          `this API key belongs to wallet ${me.wallet_address}, not ${expected}: pass the key of ${expected}, or leave \`wallet\` out`
        )
      }
      return { base_url: self.baseUrl, agent_name: me.agent_name, wallet_address: me.wallet_address, api_key: apiKey }
    })
  }

  private register(name: string, referralCode: OrchestratorSettings["referralCode"]): Effect.Effect<StoredIdentity, RemoteSetupFailed> {
    return Effect.flatMap(this.settlement.anonymous, (client) =>
      this.settlement.call<{ readonly wallet_address: WalletAddress; readonly api_key: Redacted.Redacted<string> }, { readonly message: string }>(
        "register",
        client.agents.register({ payload: { agent_name: name, referral_code: referralCode } }),
        SettlementClient.isRateLimited,
        registerErrors
      )).pipe(
        Effect.mapError((error) => this.failed("registration", `the service did not register an agent named ${name}: ${error.message}`)),
        Effect.map((created) => ({ base_url: this.baseUrl, agent_name: name, wallet_address: created.wallet_address, api_key: created.api_key })),
        Effect.tap((created) => Effect.logInfo("registered with the settlement service", { wallet: created.wallet_address, name }))
      )
  }

  /** The stored identity, or `undefined` when the file does not exist yet. */
  private read(file: string): Effect.Effect<StoredIdentity | undefined, RemoteSetupFailed> {
    return Effect.tryPromise({
      try: () => fs.readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e))),
      catch: (e) => this.failed("identityFile", `cannot read ${file}: ${String(e)}`)
    }).pipe(
      Effect.flatMap((text) =>
        text === undefined
          ? Effect.succeed(undefined)
          : Schema.decodeUnknown(IdentityJson)(text).pipe(
            Effect.mapError(() => this.failed("identityFile", `${file} does not hold an identity (base_url, agent_name, wallet_address, api_key)`)),
            Effect.filterOrFail(
              (stored) => stored.base_url === this.baseUrl,
              (stored) => this.failed("identityFile", `${file} holds an identity on ${stored.base_url}, not on ${this.baseUrl}`)
            )
          )
      )
    )
  }

  /** Writes the identity for later starts: readable by its owner only, never over another's. */
  private write(file: string, identity: StoredIdentity): Effect.Effect<void, RemoteSetupFailed> {
    return Schema.encode(IdentityJson)(identity).pipe(
      Effect.orDie,
      Effect.flatMap((json) =>
        Effect.tryPromise({
          try: async () => {
            await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
            await fs.writeFile(file, `${json}\n`, { mode: 0o600, flag: "wx" })
          },
          catch: (e) =>
            this.failed(
              "identityFile",
              `registered ${identity.wallet_address}, but could not write its identity to ${file} (${String(e)}): its key is lost`
            )
        })
      )
    )
  }

  /** Claims the faucet for a wallet holding nothing; refused, the start fails naming the wallet to fund. */
  fund(identity: StoredIdentity, faucet: boolean): Effect.Effect<void, RemoteSetupFailed> {
    if (!faucet) return Effect.void
    const { settlement } = this
    const wallet = identity.wallet_address
    const self = this
    return Effect.gen(function*() {
      const client = yield* settlement.clientFor(identity.api_key)
      const held = yield* settlement.call<{ readonly balance_usdc: bigint; readonly locked_usdc: bigint }, { readonly message: string }>(
        "balance",
        client.wallets.balance({ path: { address: wallet } }),
        SettlementClient.isTransient,
        readErrors
      ).pipe(Effect.mapError((e) => self.failed("funds", `cannot read the balance of ${wallet}: ${e.message}`)))
      if (held.balance_usdc + held.locked_usdc > 0n) return
      yield* settlement.call<unknown, { readonly _tag: string; readonly message: string }>(
        "claimFaucet",
        client.wallets.claimFaucet({ payload: { wallet_address: wallet, agent_name: identity.agent_name } }),
        SettlementClient.isRateLimited,
        faucetErrors
      ).pipe(
        Effect.mapError((e) =>
          self.failed(
            "funds",
            `${wallet} holds no USDC and the faucet refused it (${e._tag}: ${e.message}): fund it from outside the ledger, ` +
              "or start with faucet: false to run unfunded"
          )
        ),
        Effect.tap(() => Effect.logInfo("claimed the faucet", { wallet }))
      )
    })
  }
}
