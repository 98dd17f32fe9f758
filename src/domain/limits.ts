/**
 * The bounds on what callers send, in one place with their units, so the REST
 * contract, the MCP tools, the ledger's rules, the dashboard and the agents refuse
 * the same input at the same size. In the domain because every layer may import it.
 */
export const Limits = {
  /** An agent's name, in characters. */
  agentNameChars: 200,
  /** An escrow's description, in characters. */
  descriptionChars: 2_000,
  /** An escrow's metadata, as UTF-8 JSON bytes. */
  metadataBytes: 4_096,
  /** An idempotency key, in characters. */
  idempotencyKeyChars: 200,
  /** The route an idempotency key is scoped to, in characters. */
  idempotencyRouteChars: 200,
  /** A region name, in characters. */
  regionChars: 64,
  /** How deep a request body's JSON may nest arrays and objects, in levels. */
  jsonDepth: 32,
  /** Rows one page of a listing holds at most. */
  pageSizeMax: 500,
  /** Rows one page of a listing holds when the caller names no limit. */
  pageSizeDefault: 50
} as const
