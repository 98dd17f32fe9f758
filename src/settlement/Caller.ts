/**
 * Who the settlement rules act for: the transport authenticates the caller (an API
 * key over REST or MCP) and hands the rules this.
 */
import type { AgentId, WalletAddress } from "../domain/ids.js"

/** The authenticated agent behind a request, and the key it presented. */
export interface Caller {
  readonly agentId: AgentId
  readonly wallet: WalletAddress
  /** The presented key's id in the key store (its SHA-256, hex; never the key). */
  readonly keyHash: string
  /**
   * Null for the agent's current key. Set when a rotation replaced it: the key
   * works for ordinary calls until then, and may not manage keys, mandates or
   * payment tokens (`requireCurrentKey` in Settlement.ts).
   */
  readonly keyExpiresAtMs: number | null
}
