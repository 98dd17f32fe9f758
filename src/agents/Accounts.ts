/**
 * The orchestrator's view of account provisioning and reporting: a small port so
 * the runtime works both on the in-process `Ledger` (`Accounts.layerFromLedger`) and
 * on a remote settlement service (`AccountsHttp.layer`, or `AccountsHttp.layerWithEscrow` with
 * the Escrow port on the same pool and keys: src/client/AccountsHttp.ts),
 * without knowing which.
 *
 * Money moves only through the `Escrow` port; this port registers agents, funds
 * them (faucet, deposits in demos) and reads what the ledger recorded.
 */
import { Context, Effect, Layer } from "effect"
import type * as Errors from "../domain/errors.js"
import type { AgentRecord, WalletBalance } from "../domain/Escrow.js"
import type { WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import {
  type ActivityReport,
  type EscrowPage,
  type EscrowQuery,
  type FaucetClaim,
  Ledger,
  type LedgerShape,
  type ReferralReport,
  type RegisterAgentInput
} from "../ledger/Ledger.js"

export type RegisterError =
  | Errors.InvalidInput
  | Errors.WalletAlreadyRegistered
  | Errors.ReferralCodeNotFound
  | Errors.ReferralCycle
  | Errors.Forbidden
  | Errors.LedgerUnavailable

/** `Forbidden` comes only from a remote settlement service that refused the caller's key. */
export type FaucetError = Errors.FaucetError | Errors.Forbidden

/** Reads: an unavailable ledger, or a remote service that refuses this key the wallet. */
export type ReadError = Errors.Forbidden | Errors.LedgerUnavailable

export interface AccountsShape {
  readonly register: (input: RegisterAgentInput) => Effect.Effect<AgentRecord, RegisterError>
  readonly claimFaucet: (wallet: WalletAddress, agentName: string) => Effect.Effect<FaucetClaim, FaucetError>
  /** Funds a wallet from outside (demos, tests; an on-chain deposit in production). */
  readonly deposit: (
    wallet: WalletAddress,
    amount: Usdc
  ) => Effect.Effect<WalletBalance, Errors.InvalidInput | Errors.AgentNotFound | ReadError>
  readonly getAgent: (wallet: WalletAddress) => Effect.Effect<AgentRecord, Errors.AgentNotFound | ReadError>
  readonly balance: (wallet: WalletAddress) => Effect.Effect<WalletBalance, ReadError>
  readonly activity: (wallet: WalletAddress) => Effect.Effect<ActivityReport, ReadError>
  readonly referrals: (wallet: WalletAddress) => Effect.Effect<ReferralReport, Errors.AgentNotFound | ReadError>
  /**
   * Escrows a wallet paid or was paid by, a page at a time (who paid whom). A remote
   * settlement service lists one wallet's at a time: without `wallet` it fails with
   * `InvalidInput` naming it.
   */
  readonly escrows: (query: EscrowQuery) => Effect.Effect<EscrowPage, Errors.InvalidInput | ReadError>
}

export const fromLedger = (ledger: LedgerShape): AccountsShape => ({
  register: ledger.registerAgent,
  claimFaucet: (wallet, agentName) => ledger.claimFaucet({ wallet, agentName }),
  deposit: ledger.deposit,
  getAgent: ledger.getAgent,
  balance: ledger.balance,
  activity: ledger.activity,
  referrals: ledger.referrals,
  escrows: ledger.listEscrows
})

export class Accounts extends Context.Tag("ringmaster/Accounts")<Accounts, AccountsShape>() {
  /** Accounts on whatever `Ledger` is provided (memory or SQL), in process. */
  static readonly layerFromLedger: Layer.Layer<Accounts, never, Ledger> = Layer.effect(
    Accounts,
    Effect.map(Ledger, fromLedger)
  )
}
