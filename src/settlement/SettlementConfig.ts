/**
 * The settlement service's own settings (the ledger's are in `LedgerConfig`):
 * where it listens, what it accepts, how hard it limits callers, how long a
 * rotated key keeps working. Defaults never stop legitimate load.
 */
import { Config, Context, Duration, Layer } from "effect"

export interface SettlementConfigShape {
  /** TCP port of `server.layer`. */
  readonly port: number
  /** Interface to listen on: all by default (Fly's proxy connects from outside the VM); 127.0.0.1 in tests. */
  readonly host: string
  /** Larger request bodies are refused with 413 before they are read. */
  readonly maxBodyBytes: number
  /** Authenticated requests per agent per second (token bucket: this is also the burst). */
  readonly agentRequestsPerSecond: number
  /** `POST /api/agents` per client address per minute. */
  readonly registrationsPerMinute: number
  /**
   * Faucet claims paid per client address per UTC day (REST and MCP alike). The
   * faucet pays each wallet once, and registering a wallet is free, so without this
   * one address could register wallet after wallet and drain the treasury.
   */
  readonly faucetClaimsPerAddressPerDay: number
  /**
   * Behind Fly's proxy (or another), the client address comes from `Fly-Client-IP`
   * or the first `X-Forwarded-For` entry. Off by default: anyone can send those
   * headers, so they are trusted only when a proxy is known to set them.
   */
  readonly trustProxy: boolean
  /** After a rotation the previous key keeps working this long. */
  readonly keyRotationGrace: Duration.Duration
  /**
   * Off by default: a payer may cancel only after the deadline (the payee may
   * cancel at any time), so a payer cannot take back the price of work under way.
   * An orchestrator over HTTP refunds a failed sub-agent's escrow early with the
   * payee's key (`AccountsHttp.layerWithEscrow`); on, the payer may do it too.
   */
  readonly payerMayCancelBeforeDeadline: boolean
  /** Rate-limiter buckets kept in memory at most; idle (full) buckets are dropped first. */
  readonly rateLimitMaxKeys: number
}

export class SettlementConfig extends Context.Tag("ringmaster/SettlementConfig")<SettlementConfig, SettlementConfigShape>() {}

export const defaults: SettlementConfigShape = {
  port: 8080,
  host: "0.0.0.0",
  maxBodyBytes: 64 * 1024,
  agentRequestsPerSecond: 1_000,
  registrationsPerMinute: 60,
  faucetClaimsPerAddressPerDay: 3,
  trustProxy: false,
  keyRotationGrace: Duration.hours(24),
  payerMayCancelBeforeDeadline: false,
  rateLimitMaxKeys: 100_000
}

export const make = (overrides: Partial<SettlementConfigShape> = {}): SettlementConfigShape => {
  const config = { ...defaults, ...overrides }
  const positiveInt = (name: keyof SettlementConfigShape, value: number) => {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`SettlementConfig.${name} must be a positive integer, got ${value}`)
  }
  // Port 0 asks the OS for an ephemeral port (tests).
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65_535) {
    throw new Error(`SettlementConfig.port must be 0-65535, got ${config.port}`)
  }
  positiveInt("maxBodyBytes", config.maxBodyBytes)
  positiveInt("agentRequestsPerSecond", config.agentRequestsPerSecond)
  positiveInt("registrationsPerMinute", config.registrationsPerMinute)
  positiveInt("faucetClaimsPerAddressPerDay", config.faucetClaimsPerAddressPerDay)
  positiveInt("rateLimitMaxKeys", config.rateLimitMaxKeys)
  return config
}

export const layer = (overrides: Partial<SettlementConfigShape> = {}) => Layer.succeed(SettlementConfig, make(overrides))

/**
 * From the environment: `PORT`, `HOST`, `MAX_BODY_BYTES`, `RATE_LIMIT_PER_AGENT` (per
 * second), `REGISTRATIONS_PER_MINUTE`, `FAUCET_CLAIMS_PER_ADDRESS_PER_DAY`, `TRUST_PROXY` (true behind Fly),
 * `KEY_ROTATION_GRACE` ("24 hours"), `PAYER_MAY_CANCEL_BEFORE_DEADLINE`.
 */
export const fromEnv: Config.Config<SettlementConfigShape> = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(defaults.port)),
  host: Config.string("HOST").pipe(Config.withDefault(defaults.host)),
  maxBodyBytes: Config.integer("MAX_BODY_BYTES").pipe(Config.withDefault(defaults.maxBodyBytes)),
  agentRequestsPerSecond: Config.integer("RATE_LIMIT_PER_AGENT").pipe(Config.withDefault(defaults.agentRequestsPerSecond)),
  registrationsPerMinute: Config.integer("REGISTRATIONS_PER_MINUTE").pipe(Config.withDefault(defaults.registrationsPerMinute)),
  faucetClaimsPerAddressPerDay: Config.integer("FAUCET_CLAIMS_PER_ADDRESS_PER_DAY").pipe(
    Config.withDefault(defaults.faucetClaimsPerAddressPerDay)
  ),
  trustProxy: Config.boolean("TRUST_PROXY").pipe(Config.withDefault(defaults.trustProxy)),
  keyRotationGrace: Config.duration("KEY_ROTATION_GRACE").pipe(Config.withDefault(defaults.keyRotationGrace)),
  payerMayCancelBeforeDeadline: Config.boolean("PAYER_MAY_CANCEL_BEFORE_DEADLINE").pipe(
    Config.withDefault(defaults.payerMayCancelBeforeDeadline)
  ),
  rateLimitMaxKeys: Config.integer("RATE_LIMIT_MAX_KEYS").pipe(Config.withDefault(defaults.rateLimitMaxKeys))
}).pipe(Config.validate({ message: "settlement limits must be positive integers", validation: (c) => {
  try {
    make(c)
    return true
  } catch {
    return false
  }
} }))

export const layerConfig = Layer.effect(SettlementConfig, fromEnv)
