/**
 * Who this orchestrator is: its agent id, wallet and referral code, the payee of
 * every paid request and the wallet payers grant their mandates to.
 *
 * Resolved once at start and kept in `DATA_DIR/identity.json`, so a restart (or a
 * new machine on the same volume) keeps the same wallet and the mandates granted to
 * it stay valid:
 * - `AGENT_WALLET` (a Fly secret) wins when set;
 * - otherwise the wallet recorded in `identity.json`;
 * - otherwise (embedded ledger only) a new agent is registered and recorded.
 * With the embedded ledger the ledger's record is the truth (agent id, referral
 * code); with a remote settlement service the identity comes from the secrets, and
 * a missing referral code is fetched from `GET /api/referrals` in the background.
 * Nothing here holds a secret: the API key stays in the environment.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, Ref, Schema } from "effect"
import { AgentId, ReferralCode, WalletAddress } from "../domain/ids.js"
import { SettlementApi } from "../http/Api.js"
import { Ledger, type LedgerShape } from "../ledger/Ledger.js"
import { ServiceConfig, type ServiceConfigShape } from "./ServiceConfig.js"

export interface OrchestratorIdentity {
  readonly agentId: AgentId | null
  readonly name: string
  readonly wallet: WalletAddress
  readonly referralCode: ReferralCode | null
}

export interface IdentityShape {
  /** Fixed for the life of the process: the payee of every paid request. */
  readonly wallet: WalletAddress
  readonly current: Effect.Effect<OrchestratorIdentity>
}

export class Identity extends Context.Tag("ringmaster/service/Identity")<Identity, IdentityShape>() {}

const IdentityFile = Schema.Struct({
  agent_id: Schema.NullOr(AgentId),
  agent_name: Schema.String,
  wallet_address: WalletAddress,
  referral_code: Schema.NullOr(ReferralCode),
  faucet_claimed: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
type IdentityFile = typeof IdentityFile.Type

export const identityFilename = (dataDir: string) => path.join(dataDir, "identity.json")

const readFile = (dataDir: string): Effect.Effect<IdentityFile | undefined> =>
  Effect.sync(() => {
    const file = identityFilename(dataDir)
    if (!fs.existsSync(file)) return undefined
    return Schema.decodeUnknownSync(Schema.parseJson(IdentityFile))(fs.readFileSync(file, "utf8"))
  }).pipe(
    // A damaged file must not silently give the service a new wallet: stop and say so.
    Effect.catchAllDefect((defect) => Effect.dieMessage(`${identityFilename(dataDir)} is not a valid identity file: ${String(defect)}`))
  )

/** Atomic: write a temporary file, then rename over the old one. */
const writeFile = (dataDir: string, value: IdentityFile): Effect.Effect<void> =>
  Effect.sync(() => {
    fs.mkdirSync(dataDir, { recursive: true })
    const file = identityFilename(dataDir)
    const tmp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(tmp, JSON.stringify(Schema.encodeSync(IdentityFile)(value), null, 2) + "\n", { mode: 0o644 })
    fs.renameSync(tmp, file)
  })

const toIdentity = (f: IdentityFile): OrchestratorIdentity => ({
  agentId: f.agent_id,
  name: f.agent_name,
  wallet: f.wallet_address,
  referralCode: f.referral_code
})

/** Embedded ledger: look the agent up, or register it; claim the faucet once. */
const resolveEmbedded = (config: ServiceConfigShape, ledger: LedgerShape) =>
  Effect.gen(function*() {
    const stored = yield* readFile(config.dataDir)
    const wallet = config.agentWallet ?? stored?.wallet_address
    if (config.agentWallet !== undefined && stored !== undefined && stored.wallet_address !== config.agentWallet) {
      yield* Effect.logWarning("AGENT_WALLET differs from the identity recorded in DATA_DIR; using AGENT_WALLET", {
        recorded: stored.wallet_address,
        wallet: config.agentWallet
      })
    }
    const existing = wallet === undefined
      ? undefined
      : yield* ledger.getAgent(wallet).pipe(Effect.catchTag("AgentNotFound", () => Effect.succeed(undefined)))
    const agent = existing ?? (yield* ledger.registerAgent({ name: config.agentName, wallet }))
    if (existing === undefined) yield* Effect.logInfo("orchestrator registered in the ledger", { wallet: agent.wallet, agentId: agent.agentId })
    if (config.referralCode !== undefined && config.referralCode !== agent.referralCode) {
      yield* Effect.logWarning("REFERRAL_CODE differs from the ledger's code for this wallet; the ledger's is reported", {
        configured: config.referralCode,
        ledger: agent.referralCode
      })
    }
    let faucetClaimed = stored?.wallet_address === agent.wallet && stored.faucet_claimed
    if (config.faucetOnStart && !faucetClaimed) {
      yield* ledger.claimFaucet({ wallet: agent.wallet, agentName: agent.name }).pipe(
        Effect.tap((claim) => Effect.logInfo("faucet claimed for the orchestrator", { credited: claim.credited.toString() })),
        Effect.catchTag("FaucetAlreadyClaimed", () => Effect.void),
        Effect.catchAll((error) => Effect.logWarning("faucet claim at start failed; continuing", { error: error.message }))
      )
      faucetClaimed = true
    }
    const record: IdentityFile = {
      agent_id: agent.agentId,
      agent_name: agent.name,
      wallet_address: agent.wallet,
      referral_code: agent.referralCode,
      faucet_claimed: faucetClaimed
    }
    yield* writeFile(config.dataDir, record)
    return record
  })

/** `Identity` on the embedded ledger. */
export const layerEmbedded: Layer.Layer<Identity, unknown, Ledger | ServiceConfig> = Layer.effect(
  Identity,
  Effect.gen(function*() {
    const record = yield* resolveEmbedded(yield* ServiceConfig, yield* Ledger)
    const identity = toIdentity(record)
    return { wallet: identity.wallet, current: Effect.succeed(identity) }
  })
)

/**
 * Remote settlement: the identity comes from `AGENT_WALLET` / `REFERRAL_CODE`. In the
 * background (a cold start never waits on the settlement service): the referral
 * code is fetched when not configured, and the faucet at `FAUCET_BASE` is claimed
 * once when `FAUCET_ON_START` is on.
 */
export const layerRemote: Layer.Layer<Identity, unknown, ServiceConfig> = Layer.scoped(
  Identity,
  Effect.gen(function*() {
    const config = yield* ServiceConfig
    if (config.settlement._tag !== "Remote" || config.agentWallet === undefined) {
      return yield* Effect.dieMessage("Identity.layerRemote needs ESCROW_BASE, PF_API_KEY and AGENT_WALLET")
    }
    const remote = config.settlement
    const stored = yield* readFile(config.dataDir)
    const sameWallet = stored?.wallet_address === config.agentWallet
    const initial: IdentityFile = {
      agent_id: sameWallet ? stored!.agent_id : null,
      agent_name: config.agentName,
      wallet_address: config.agentWallet,
      referral_code: config.referralCode ?? (sameWallet ? stored!.referral_code : null),
      faucet_claimed: sameWallet ? stored!.faucet_claimed : false
    }
    yield* writeFile(config.dataDir, initial)
    const ref = yield* Ref.make(initial)

    const client = (baseUrl: string) =>
      HttpApiClient.make(SettlementApi, {
        baseUrl,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(remote.apiKey))
      })
    const background = Effect.gen(function*() {
      if (initial.referral_code === null) {
        const report = yield* (yield* client(remote.baseUrl)).agents.referrals()
        yield* Ref.update(ref, (r) => ({ ...r, referral_code: report.referral_code }))
      }
      if (config.faucetOnStart && !initial.faucet_claimed) {
        yield* (yield* client(remote.faucetBaseUrl)).wallets.claimFaucet({
          payload: { wallet_address: config.agentWallet!, agent_name: config.agentName }
        }).pipe(Effect.catchIf((e) => (e as { error?: string }).error === "faucet_already_claimed", () => Effect.void))
        yield* Ref.update(ref, (r) => ({ ...r, faucet_claimed: true }))
      }
      yield* Effect.flatMap(Ref.get(ref), (r) => writeFile(config.dataDir, r))
    }).pipe(
      Effect.timeout("30 seconds"),
      Effect.catchAllCause((cause) =>
        Effect.logWarning("identity: settlement service not reachable at start (referral code / faucet); will retry next start", cause)
      ),
      Effect.provide(FetchHttpClient.layer)
    )
    yield* Effect.forkScoped(background)
    return {
      wallet: config.agentWallet,
      current: Effect.map(Ref.get(ref), toIdentity)
    }
  })
)
