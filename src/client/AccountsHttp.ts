/**
 * `Accounts` against a remote settlement service (`AccountsHttp.layer`, from `ringmaster/http`): an
 * orchestrator registers, funds and reports on its sub-agents through the
 * service's REST API instead of an in-process ledger. Pair it with
 * `EscrowHttp.layer` on the same service and key.
 *
 * The service authorizes by API key, and most of its routes serve only the
 * caller's own wallet: the faucet, a wallet's balance and activity, its escrows
 * and its referral report. So this layer keeps the key of every agent it registers
 * (in memory, for the life of the layer: the service shows a key only once), and
 * any given as `agentKeys`, and calls for a wallet with that wallet's key; for any
 * other wallet it uses the key it was given, the orchestrator's own. Where the route
 * names the wallet, the service decides whether that key may read it (a refusal
 * comes back as `Forbidden` naming it). Where the route answers about the
 * caller (`/api/referrals`, `/api/escrows`), the layer first confirms the key owns
 * the wallet, so a report never comes back about the wrong one.
 * Any agent's public card (`getAgent`) is readable with any key.
 *
 * What the settlement API does not do, this layer cannot: deposits (funds arrive
 * from the faucet, or from outside the ledger) fail with `InvalidInput`.
 *
 * `layerWithEscrow` gives `Accounts` and `Escrow` on one pool, sharing those keys:
 * the escrows of a sub-agent registered here are then created, released and
 * cancelled as the party the service requires (src/client/EscrowHttp.ts). That is
 * what lets a failed task be refunded at once (its payee cancels; the payer may
 * only after the deadline) and a sub-agent's `run` hire with its own budget.
 *
 * Retries (src/client/SettlementClient.ts): reads on any transient failure; a
 * registration or a faucet claim only on 429, which the service answers before
 * doing anything, since a repeat after it acted would register a second agent or
 * be told the faucet was already claimed.
 */
import { type ConfigError, Context, Effect, Layer, type Redacted, type Scope } from "effect"
import { Forbidden, InvalidInput, LedgerUnavailable } from "../domain/errors.js"
import type { WalletAddress } from "../domain/ids.js"
import { Escrow } from "../escrow/Escrow.js"
import * as EscrowHttp from "./EscrowHttp.js"
import * as SettlementClient from "./SettlementClient.js"
import * as View from "../http/views.js"
import type { RegisterAgentInput } from "../ledger/Ledger.js"
import { Accounts, type AccountsShape, type ReadError, type RegisterError } from "../agents/Accounts.js"
import { BoundedMap } from "../domain/BoundedMap.js"

export interface AccountsHttpOptions extends SettlementClient.SettlementClientOptions {
  /** The key of the agent this process acts for (the orchestrator's; `PF_API_KEY`). */
  readonly apiKey: Redacted.Redacted<string>
  /**
   * Keys of agents registered before this layer (by an earlier process, say), by
   * wallet: their wallets are read with their own keys, as those it registers are.
   */
  readonly agentKeys?: Readonly<Record<string, Redacted.Redacted<string>>> | undefined
}

/** Keys of agents registered through one layer, at most (beyond it the oldest is forgotten, and its wallet read with the layer's own key). */
const MAX_KEYS = 100_000

const registerErrors = new Set([
  "InvalidInput",
  "WalletAlreadyRegistered",
  "ReferralCodeNotFound",
  "ReferralCycle",
  "LedgerUnavailable"
])
const faucetErrors = new Set([
  "AgentNotFound",
  "FaucetAlreadyClaimed",
  "FaucetTreasuryEmpty",
  "FaucetDailyCapReached",
  "InvalidInput",
  "LedgerUnavailable"
])
const agentErrors = new Set(["AgentNotFound", "LedgerUnavailable"])
const readErrors = new Set(["LedgerUnavailable"])

export const make = (options: AccountsHttpOptions): Effect.Effect<AccountsShape, never, Scope.Scope> =>
  Effect.flatMap(SettlementClient.make("AccountsHttp", options), (settlement) =>
    Effect.map(makeWith(options, settlement), ({ accounts }) => accounts))

/** On a pool the caller made; also returns the clients of the agents whose keys it holds. */
const makeWith = (
  options: AccountsHttpOptions,
  settlement: SettlementClient.SettlementClient
): Effect.Effect<{ readonly accounts: AccountsShape; readonly partyClients: EscrowHttp.PartyClients }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { call } = settlement
    const { isRateLimited, isTransient } = SettlementClient
    const own = yield* settlement.clientFor(options.apiKey)

    /** Clients for the agents registered here, by wallet. */
    const registered = new BoundedMap<string, SettlementClient.Client>(MAX_KEYS)
    /** For routes that name the wallet (the service refuses another's): its own key, else the layer's. */
    const clientOf = (wallet: WalletAddress) => registered.get(wallet) ?? own

    /** The layer's own wallet, once the service has shown which it is. */
    let ownWallet: WalletAddress | undefined
    /**
     * For routes that answer about the caller, whoever it is (`/api/referrals`,
     * `/api/escrows`): the wallet's own key, or the layer's once the service confirmed
     * that key owns the wallet. Otherwise the answer would be about the wrong wallet.
     */
    const ownerOf = (wallet: WalletAddress): Effect.Effect<SettlementClient.Client, ReadError> => {
      const client = registered.get(wallet)
      if (client !== undefined) return Effect.succeed(client)
      if (ownWallet === wallet) return Effect.succeed(own)
      return call<unknown, ReadError>("whose key", own.wallets.balance({ path: { address: wallet } }), isTransient, readErrors).pipe(
        Effect.mapError((error) =>
          error._tag === "Forbidden"
            ? new Forbidden({
              operation: `a report on ${wallet}`,
              code: error.code,
              reason: `this layer holds no key for ${wallet}, and the service reports a wallet only to its owner (${error.reason})`
            })
            : error
        ),
        Effect.as(own),
        Effect.tap(() => Effect.sync(() => (ownWallet = wallet)))
      )
    }

    const getAgent: AccountsShape["getAgent"] = (wallet) =>
      call("getAgent", Effect.map(own.agents.agent({ path: { address: wallet } }), View.agentFromCard), isTransient, agentErrors)

    const registerOnService = (
      input: RegisterAgentInput
    ): Effect.Effect<{ readonly wallet_address: WalletAddress; readonly api_key: Redacted.Redacted<string> }, RegisterError> =>
      call(
        "register",
        own.agents.register({ payload: { agent_name: input.name, wallet_address: input.wallet, referral_code: input.referralCode } }),
        isRateLimited,
        registerErrors
      )

    const remember = (wallet: WalletAddress, client: SettlementClient.Client) => {
      registered.set(wallet, client)
    }

    for (const [wallet, key] of Object.entries(options.agentKeys ?? {})) {
      remember(wallet.toLowerCase() as WalletAddress, yield* settlement.clientFor(key))
    }

    const accounts: AccountsShape = {
      register: (input) =>
        Effect.gen(function*() {
          const created = yield* registerOnService(input)
          remember(created.wallet_address, yield* settlement.clientFor(created.api_key))
          // The card carries what the registration's answer does not: the referrer's wallet, the time.
          return yield* getAgent(created.wallet_address).pipe(
            Effect.catchTag("AgentNotFound", (e) =>
              Effect.fail(new LedgerUnavailable({ message: `registered ${created.wallet_address}, then could not read its card: ${e.message}` })))
          )
        }),

      claimFaucet: (wallet, agentName) =>
        call(
          "claimFaucet",
          Effect.map(
            clientOf(wallet).wallets.claimFaucet({ payload: { wallet_address: wallet, agent_name: agentName } }),
            (claimed) => ({ wallet, agentName, credited: claimed.credited_usdc, balance: claimed.balance_usdc })
          ),
          isRateLimited,
          faucetErrors
        ),

      deposit: (wallet) =>
        Effect.fail(
          new InvalidInput({
            field: "wallet",
            message: `the settlement service takes no deposits over its API: fund ${wallet} from the faucet or from outside the ledger`
          })
        ),

      getAgent,

      balance: (wallet) =>
        call(
          "balance",
          Effect.map(clientOf(wallet).wallets.balance({ path: { address: wallet } }), (w) => ({
            wallet: w.wallet_address,
            available: w.balance_usdc,
            locked: w.locked_usdc
          })),
          isTransient,
          readErrors
        ),

      activity: (wallet) =>
        call(
          "activity",
          Effect.map(clientOf(wallet).wallets.activity({ path: { address: wallet } }), View.activityFromView),
          isTransient,
          readErrors
        ),

      referrals: (wallet) =>
        Effect.flatMap(Effect.zip(getAgent(wallet), ownerOf(wallet)), ([agent, client]) =>
          call(
            "referrals",
            Effect.map(client.agents.referrals(), (view) => View.referralsFromView(agent, view)),
            isTransient,
            agentErrors
          )),

      escrows: (query) =>
        query.wallet === undefined
          ? Effect.fail(new InvalidInput({ field: "wallet", message: "the settlement service lists one wallet's escrows at a time: name the wallet" }))
          : Effect.flatMap(ownerOf(query.wallet), (client) =>
            call(
              "escrows",
              Effect.map(
                client.escrow.list({
                  urlParams: { status: query.status, region: query.region, limit: query.limit, cursor: query.cursor }
                }),
                (page) => ({ escrows: page.escrows.map(View.escrowFromView), nextCursor: page.next_cursor })
              ),
              isTransient,
              readErrors
            ))
    }
    return { accounts, partyClients: (wallet: WalletAddress) => registered.get(wallet) }
  })

/** `Accounts` on the settlement service at `baseUrl`, acting with `apiKey`. */
export const layer = (options: AccountsHttpOptions): Layer.Layer<Accounts> => Layer.scoped(Accounts, make(options))

/** From the environment, as `EscrowHttp.layerConfig`: `ESCROW_BASE`, `PF_API_KEY`, `ESCROW_CONNECT_TIMEOUT`, `ESCROW_READ_TIMEOUT`. */
export const layerConfig = Layer.scoped(Accounts, Effect.flatMap(EscrowHttp.config, make))

/** `Accounts` and `Escrow` sharing the keys they hold, on a pool the caller made. */
export const makeWithEscrowOn = (
  options: AccountsHttpOptions,
  settlement: SettlementClient.SettlementClient
): Effect.Effect<Context.Context<Accounts | Escrow>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { accounts, partyClients } = yield* makeWith(options, settlement)
    const escrow = yield* EscrowHttp.makeWith(options, settlement, partyClients)
    return Context.make(Accounts, accounts).pipe(Context.add(Escrow, escrow))
  })

const makeWithEscrow = (options: AccountsHttpOptions) =>
  Effect.flatMap(SettlementClient.make("SettlementHttp", options), (settlement) => makeWithEscrowOn(options, settlement))

/**
 * `Accounts` and `Escrow` on the settlement service at `baseUrl`, on one pool, the
 * escrows of the sub-agents registered here settled as the party the service
 * requires (see above): what an orchestrator on a remote settlement service wants.
 */
export const layerWithEscrow = (options: AccountsHttpOptions): Layer.Layer<Accounts | Escrow> =>
  Layer.scopedContext(makeWithEscrow(options))

/** `layerWithEscrow` from the environment: `ESCROW_BASE`, `PF_API_KEY`, `ESCROW_CONNECT_TIMEOUT`, `ESCROW_READ_TIMEOUT`. */
export const layerWithEscrowConfig: Layer.Layer<Accounts | Escrow, ConfigError.ConfigError> = Layer.scopedContext(
  Effect.flatMap(EscrowHttp.config, makeWithEscrow)
)
