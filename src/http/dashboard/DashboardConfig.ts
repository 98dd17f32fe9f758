/**
 * The dashboard's settings: the operator key, and the bounds on live updates and on
 * what one request may read.
 */
import { Config, ConfigError, Context, Either, Layer, Option, Redacted } from "effect"

export interface DashboardConfigShape {
  /** Sees every agent's data. None: there is no operator view, only agents' own. */
  readonly operatorApiKey: Option.Option<Redacted.Redacted<string>>
  /** How often a live stream checks for changes. */
  readonly liveIntervalMs: number
  /** A comment line this often keeps proxies from closing an idle stream. */
  readonly heartbeatMs: number
  /** A stream ends after this long; the page reconnects (bounds what a forgotten tab holds). */
  readonly liveStreamMaxMs: number
  /** Live streams open at once, across all viewers; beyond it the page polls. */
  readonly maxLiveStreams: number
  /** The page's polling period when it cannot hold a stream. */
  readonly pollIntervalMs: number
  /** Agents in one referral-network answer at most. */
  readonly maxNetworkAgents: number
  /**
   * The operator's views (totals over every escrow, the whole network) are recomputed
   * at most this often, once for all operator tabs: they scan tables, and SQLite
   * reads run on the event loop.
   */
  readonly operatorRefreshMs: number
}

export class DashboardConfig extends Context.Tag("ringmaster/DashboardConfig")<DashboardConfig, DashboardConfigShape>() {}

/** A shorter operator key would be guessable; API keys are 32 random bytes. */
export const MIN_OPERATOR_KEY_CHARS = 32

export const defaults: DashboardConfigShape = {
  operatorApiKey: Option.none(),
  liveIntervalMs: 1_000,
  heartbeatMs: 15_000,
  liveStreamMaxMs: 5 * 60_000,
  maxLiveStreams: 64,
  pollIntervalMs: 5_000,
  maxNetworkAgents: 2_000,
  operatorRefreshMs: 5_000
}

const validate = (config: DashboardConfigShape): Either.Either<DashboardConfigShape, string> => {
  const key = Option.map(config.operatorApiKey, Redacted.value)
  if (Option.isSome(key) && key.value.length < MIN_OPERATOR_KEY_CHARS) {
    return Either.left(`OPERATOR_API_KEY must be at least ${MIN_OPERATOR_KEY_CHARS} characters (e.g. \`openssl rand -hex 32\`)`)
  }
  const positive: ReadonlyArray<[string, number]> = [
    ["liveIntervalMs", config.liveIntervalMs],
    ["heartbeatMs", config.heartbeatMs],
    ["liveStreamMaxMs", config.liveStreamMaxMs],
    ["maxLiveStreams", config.maxLiveStreams],
    ["pollIntervalMs", config.pollIntervalMs],
    ["maxNetworkAgents", config.maxNetworkAgents],
    ["operatorRefreshMs", config.operatorRefreshMs]
  ]
  for (const [name, value] of positive) {
    if (!Number.isInteger(value) || value <= 0) return Either.left(`DashboardConfig.${name} must be a positive integer, got ${value}`)
  }
  return Either.right(config)
}

export const make = (overrides: Partial<DashboardConfigShape> = {}): DashboardConfigShape =>
  Either.getOrElse(validate({ ...defaults, ...overrides }), (message) => {
    throw new Error(message)
  })

/** Fixed settings (tests): `layer({ operatorApiKey: Option.some(Redacted.make(key)) })`. */
export const layer = (overrides: Partial<DashboardConfigShape> = {}) => Layer.sync(DashboardConfig, () => make(overrides))

/**
 * From the environment: `OPERATOR_API_KEY` (secret; a Fly secret in production),
 * `DASHBOARD_LIVE_INTERVAL_MS`, `DASHBOARD_MAX_LIVE_STREAMS`, `DASHBOARD_POLL_INTERVAL_MS`,
 * `DASHBOARD_OPERATOR_REFRESH_MS`.
 */
export const fromEnv: Config.Config<DashboardConfigShape> = Config.all({
  operatorApiKey: Config.option(Config.redacted("OPERATOR_API_KEY")),
  liveIntervalMs: Config.integer("DASHBOARD_LIVE_INTERVAL_MS").pipe(Config.withDefault(defaults.liveIntervalMs)),
  maxLiveStreams: Config.integer("DASHBOARD_MAX_LIVE_STREAMS").pipe(Config.withDefault(defaults.maxLiveStreams)),
  pollIntervalMs: Config.integer("DASHBOARD_POLL_INTERVAL_MS").pipe(Config.withDefault(defaults.pollIntervalMs)),
  operatorRefreshMs: Config.integer("DASHBOARD_OPERATOR_REFRESH_MS").pipe(Config.withDefault(defaults.operatorRefreshMs))
}).pipe(
  Config.mapOrFail((values) =>
    Either.mapLeft(validate({ ...defaults, ...values }), (message) => ConfigError.InvalidData([], message))
  )
)

export const layerConfig = Layer.effect(DashboardConfig, fromEnv)
