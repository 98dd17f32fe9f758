/**
 * The long-lived service's settings, in layers:
 *
 *   defaults  <  fly.toml `[env]` (public, committed)  <  environment variables and Fly secrets
 *
 * On Fly the `[env]` table and the secrets both arrive as environment variables, so
 * `ConfigProvider.fromEnv()` sees them already merged; `provider({ flyTomlEnv })`
 * adds the `[env]` table as an explicit middle layer for running the same settings
 * outside Fly (`RINGMASTER_FLY_TOML=fly.toml`) and for tests. Every value is
 * validated before anything starts; `describeConfigError` turns a failure into the
 * one line `main.ts` prints.
 *
 * Secrets (`PF_API_KEY`, `DATABASE_URL`) are `Redacted`: they print as `<redacted>`.
 * `AGENT_WALLET` and `REFERRAL_CODE` are set as Fly secrets by convention, but they
 * are public identifiers: `/info` shows them.
 */
import { Config, ConfigError, ConfigProvider, Context, Duration, Either, Layer, Option, type Redacted, Schema } from "effect"
import { ReferralCode, WalletAddress } from "../domain/ids.js"
import { Limits } from "../domain/limits.js"
import type { LedgerConfigShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"

export type LogFormat = "json" | "pretty"

/** Where settlement happens. */
export type SettlementMode =
  | { readonly _tag: "Embedded" }
  | {
    readonly _tag: "Remote"
    /** `ESCROW_BASE`, without a trailing slash. */
    readonly baseUrl: string
    readonly apiKey: Redacted.Redacted<string>
    /** `FAUCET_BASE` (default: `ESCROW_BASE`): where the orchestrator claims its starting balance. */
    readonly faucetBaseUrl: string
  }

export interface ServiceConfigShape {
  readonly port: number
  readonly host: string
  /** Prometheus text on `http://<host>:<metricsPort>/metrics`; 0 picks a free port (tests). */
  readonly metricsPort: number
  readonly metricsPath: string
  /** The embedded ledger (`ledger.db`), the service journal (`service.db`) and `identity.json`. */
  readonly dataDir: string
  /** `FLY_REGION`, or "local". Tags every escrow this service opens and every metric. */
  readonly region: string
  /** `FLY_APP_NAME`, `FLY_MACHINE_ID`: log annotations on Fly. */
  readonly flyAppName: string | undefined
  readonly flyMachineId: string | undefined
  readonly settlement: SettlementMode
  /** The ledger's rules (fee, referral tiers, timeouts, faucet); in remote mode only reported in `/info`. */
  readonly ledger: LedgerConfigShape
  /** The orchestrator's identity, when given as secrets; otherwise registered at first start. */
  readonly agentWallet: WalletAddress | undefined
  readonly referralCode: ReferralCode | undefined
  readonly agentName: string
  /** Claim the faucet for the orchestrator's wallet once, at first start (working capital for hiring). */
  readonly faucetOnStart: boolean
  /** A paid task's deadline; its escrow's deadline is this plus `escrowGraceMs`. */
  readonly taskTimeoutMs: number
  readonly escrowGraceMs: number
  /** In-flight requests get this long to finish after SIGTERM/SIGINT; the rest are interrupted and refunded. */
  readonly shutdownTimeoutMs: number
  /** Expiry sweeps (embedded ledger) and journal reconciliation, this far apart. */
  readonly sweepIntervalMs: number
  /** Settled journal rows (the local audit trail) are kept this long. */
  readonly auditRetentionDays: number
  /** Request bodies of `/inference` and `/tasks/*` larger than this are refused (413). */
  readonly maxBodyBytes: number
  /** Prompts longer than this are refused (400). */
  readonly maxPromptChars: number
  readonly logFormat: LogFormat
  readonly logLevel: string
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`: traces go there when set. */
  readonly otlpEndpoint: string | undefined
  readonly serviceName: string
}

export class ServiceConfig extends Context.Tag("ringmaster/ServiceConfig")<ServiceConfig, ServiceConfigShape>() {}

export const defaults = {
  port: 8080,
  host: "0.0.0.0",
  metricsPort: 9091,
  metricsPath: "/metrics",
  dataDir: "./data",
  region: "local",
  agentName: "ringmaster-orchestrator",
  faucetOnStart: true,
  taskTimeoutMs: 30_000,
  escrowGraceMs: 60_000,
  shutdownTimeoutMs: 10_000,
  sweepIntervalMs: 5_000,
  auditRetentionDays: 30,
  maxBodyBytes: 64 * 1024,
  maxPromptChars: 32_000,
  logLevel: "Info",
  serviceName: "ringmaster"
} as const

/**
 * Every environment variable the service reads, for the fly.toml agreement test and
 * the README's configuration table. (The settlement API's own limits, read when it
 * is embedded, are listed in `src/settlement/SettlementConfig.ts`.)
 */
export const variables = {
  public: ["ESCROW_BASE", "FAUCET_BASE", "ESCROW_FEE", "REFERRAL_RATE"],
  secrets: ["PF_API_KEY", "AGENT_WALLET", "REFERRAL_CODE"],
  fly: ["FLY_REGION", "FLY_APP_NAME", "FLY_MACHINE_ID"],
  service: [
    "PORT",
    "HOST",
    "METRICS_PORT",
    "DATA_DIR",
    "AGENT_NAME",
    "FAUCET_ON_START",
    "TASK_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "SWEEP_INTERVAL",
    "AUDIT_RETENTION_DAYS",
    "MAX_BODY_BYTES",
    "MAX_PROMPT_CHARS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "ESCROW_TIMEOUT",
    "FAUCET_AMOUNT",
    "FAUCET_TREASURY",
    "FAUCET_DAILY_CAP"
  ]
} as const

/** An unset or empty variable is absent (`ESCROW_BASE = ""` in fly.toml means "embedded"). */
const optionalString = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((s) => s.trim().length > 0)))

const baseUrl = (name: string) =>
  optionalString(name).pipe(
    Config.mapOrFail((value) => {
      if (Option.isNone(value)) return Either.right(Option.none<string>())
      try {
        const url = new URL(value.value)
        if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("protocol")
        return Either.right(Option.some(url.toString().replace(/\/$/, "")))
      } catch {
        return Either.left(
          ConfigError.InvalidData([name], `expected an http(s) URL such as http://settlement.internal:8080, got ${JSON.stringify(value.value)}`)
        )
      }
    })
  )

const schemaValue = <A>(name: string, schema: Schema.Schema<A, string>, expected: string) =>
  optionalString(name).pipe(
    Config.mapOrFail((value) => {
      if (Option.isNone(value)) return Either.right(undefined)
      const decoded = Schema.decodeEither(schema)(value.value)
      return Either.isRight(decoded)
        ? Either.right(decoded.right as A | undefined)
        : Either.left(ConfigError.InvalidData([name], `expected ${expected}, got ${JSON.stringify(value.value)}`))
    })
  )

const millis = (name: string, fallbackMs: number, maxMs: number) =>
  Config.duration(name).pipe(
    Config.withDefault(Duration.millis(fallbackMs)),
    Config.mapOrFail((d) => {
      const ms = Duration.toMillis(d)
      return ms > 0 && ms <= maxMs
        ? Either.right(Math.ceil(ms))
        : Either.left(ConfigError.InvalidData([name], `expected a duration between 1 ms and ${Duration.format(Duration.millis(maxMs))}`))
    })
  )

/** `Config.validate` would drop the variable's name from the error; this keeps it. */
const checked = <A>(name: string, config: Config.Config<A>, valid: (a: A) => boolean, expected: string) =>
  config.pipe(
    Config.mapOrFail((a) => valid(a) ? Either.right(a) : Either.left(ConfigError.InvalidData([name], `expected ${expected}, got ${JSON.stringify(a)}`)))
  )

const boundedInt = (name: string, fallback: number, min: number, max: number) =>
  checked(name, Config.integer(name).pipe(Config.withDefault(fallback)), (n) => n >= min && n <= max, `an integer from ${min} to ${max}`)

const logFormat: Config.Config<LogFormat> = Config.all({
  explicit: Config.option(Config.literal("json", "pretty", "auto")("LOG_FORMAT")),
  onFly: Config.all([optionalString("FLY_APP_NAME"), optionalString("FLY_REGION")])
}).pipe(
  Config.map(({ explicit, onFly }) => {
    const format = Option.getOrElse(explicit, () => "auto" as const)
    if (format !== "auto") return format
    // JSON on Fly (its log shipper parses it), readable locally.
    return Option.isSome(onFly[0]) || Option.isSome(onFly[1]) ? "json" : "pretty"
  })
)

/** The whole configuration, from whatever `ConfigProvider` is current. */
export const fromEnv: Config.Config<ServiceConfigShape> = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(defaults.port)),
  host: Config.string("HOST").pipe(Config.withDefault(defaults.host)),
  metricsPort: boundedInt("METRICS_PORT", defaults.metricsPort, 0, 65_535),
  dataDir: checked("DATA_DIR", Config.string("DATA_DIR").pipe(Config.withDefault(defaults.dataDir)), (s) => s.trim().length > 0, "a directory path"),
  region: optionalString("FLY_REGION").pipe(Config.map(Option.getOrElse(() => defaults.region))),
  flyAppName: optionalString("FLY_APP_NAME").pipe(Config.map(Option.getOrUndefined)),
  flyMachineId: optionalString("FLY_MACHINE_ID").pipe(Config.map(Option.getOrUndefined)),
  escrowBase: baseUrl("ESCROW_BASE"),
  faucetBase: baseUrl("FAUCET_BASE"),
  apiKey: Config.option(Config.redacted("PF_API_KEY")),
  ledger: LedgerConfig.fromEnv,
  agentWallet: schemaValue("AGENT_WALLET", WalletAddress, "a wallet address: 0x followed by 40 hex digits"),
  referralCode: schemaValue("REFERRAL_CODE", ReferralCode, "a referral code of 4-64 letters, digits, _ or -"),
  agentName: checked("AGENT_NAME", Config.string("AGENT_NAME").pipe(Config.withDefault(defaults.agentName)), (s) => s.length > 0 && s.length <= Limits.agentNameChars, `1-${Limits.agentNameChars} characters`),
  faucetOnStart: Config.boolean("FAUCET_ON_START").pipe(Config.withDefault(defaults.faucetOnStart)),
  taskTimeoutMs: millis("TASK_TIMEOUT", defaults.taskTimeoutMs, 60 * 60_000),
  shutdownTimeoutMs: millis("SHUTDOWN_TIMEOUT", defaults.shutdownTimeoutMs, 10 * 60_000),
  sweepIntervalMs: millis("SWEEP_INTERVAL", defaults.sweepIntervalMs, 60 * 60_000),
  auditRetentionDays: boundedInt("AUDIT_RETENTION_DAYS", defaults.auditRetentionDays, 1, 3_650),
  maxBodyBytes: boundedInt("MAX_BODY_BYTES", defaults.maxBodyBytes, 1_024, 16 * 1024 * 1024),
  maxPromptChars: boundedInt("MAX_PROMPT_CHARS", defaults.maxPromptChars, 1, 10_000_000),
  logFormat,
  logLevel: Config.literal("All", "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "None")("LOG_LEVEL").pipe(
    Config.withDefault(defaults.logLevel)
  ),
  otlpEndpoint: baseUrl("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.map(Option.getOrUndefined)),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault(defaults.serviceName))
}).pipe(
  Config.mapOrFail((c): Either.Either<ServiceConfigShape, ConfigError.ConfigError> => {
    let settlement: SettlementMode = { _tag: "Embedded" }
    if (Option.isSome(c.escrowBase)) {
      if (Option.isNone(c.apiKey)) {
        return Either.left(
          ConfigError.MissingData(["PF_API_KEY"], "expected the settlement service's API key (a Fly secret) because ESCROW_BASE is set")
        )
      }
      if (c.agentWallet === undefined) {
        return Either.left(
          ConfigError.MissingData(["AGENT_WALLET"], "expected the orchestrator's registered wallet (a Fly secret) because ESCROW_BASE is set")
        )
      }
      settlement = {
        _tag: "Remote",
        baseUrl: c.escrowBase.value,
        apiKey: c.apiKey.value,
        faucetBaseUrl: Option.getOrElse(c.faucetBase, () => c.escrowBase.pipe(Option.getOrThrow))
      }
    }
    return Either.right({
      port: c.port,
      host: c.host,
      metricsPort: c.metricsPort,
      metricsPath: defaults.metricsPath,
      dataDir: c.dataDir,
      region: c.region,
      flyAppName: c.flyAppName,
      flyMachineId: c.flyMachineId,
      settlement,
      // The ledger reads FLY_REGION too; one region for escrows, logs and metrics.
      ledger: { ...c.ledger, region: c.region },
      agentWallet: c.agentWallet,
      referralCode: c.referralCode,
      agentName: c.agentName,
      faucetOnStart: c.faucetOnStart,
      taskTimeoutMs: c.taskTimeoutMs,
      escrowGraceMs: defaults.escrowGraceMs,
      shutdownTimeoutMs: c.shutdownTimeoutMs,
      sweepIntervalMs: c.sweepIntervalMs,
      auditRetentionDays: c.auditRetentionDays,
      maxBodyBytes: c.maxBodyBytes,
      maxPromptChars: c.maxPromptChars,
      logFormat: c.logFormat,
      logLevel: c.logLevel,
      otlpEndpoint: c.otlpEndpoint,
      serviceName: c.serviceName
    })
  })
)

/**
 * The layered provider: environment first, then fly.toml's `[env]` table, then
 * (through `Config.withDefault`) the defaults above.
 */
export const provider = (
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly flyTomlEnv?: Readonly<Record<string, unknown>> } = {}
): ConfigProvider.ConfigProvider => {
  const fromEnvironment = options.env === undefined
    ? ConfigProvider.fromEnv()
    : ConfigProvider.fromMap(
      new Map(Object.entries(options.env).filter((e): e is [string, string] => typeof e[1] === "string"))
    )
  if (options.flyTomlEnv === undefined) return fromEnvironment
  const toml = new Map(Object.entries(options.flyTomlEnv).map(([k, v]) => [k, String(v)] as [string, string]))
  return ConfigProvider.orElse(fromEnvironment, () => ConfigProvider.fromMap(toml))
}

/** Settings for tests and code: the defaults, an embedded ledger, `overrides` on top. */
export const make = (overrides: Partial<ServiceConfigShape> = {}): ServiceConfigShape => ({
  ...defaults,
  flyAppName: undefined,
  flyMachineId: undefined,
  settlement: { _tag: "Embedded" },
  ledger: LedgerConfig.make({ region: overrides.region ?? defaults.region }),
  agentWallet: undefined,
  referralCode: undefined,
  logFormat: "pretty",
  otlpEndpoint: undefined,
  ...overrides
})

export const layer = (overrides: Partial<ServiceConfigShape> = {}) => Layer.succeed(ServiceConfig, make(overrides))

/** From the current `ConfigProvider` (the environment unless replaced). */
export const layerConfig = Layer.effect(ServiceConfig, fromEnv)

/**
 * One line for a configuration failure: the variable and what was expected.
 * Several failures are joined on the same line; nested paths are flattened to the
 * variable name (`Config.mapOrFail` repeats it).
 */
export const describeConfigError = (error: ConfigError.ConfigError): string => {
  const leaves: Array<string> = []
  const visit = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        visit(e.left)
        visit(e.right)
        return
      case "InvalidData":
      case "MissingData":
      case "SourceUnavailable":
      case "Unsupported": {
        const name = [...new Set(e.path)].join(".") || "configuration"
        const message = e._op === "MissingData" && e.message.startsWith("Expected ") && e.message.includes("to exist")
          ? "is required but not set"
          : e.message.replace(/\s+/g, " ")
        const text = message.startsWith(`${name}=`) || message.startsWith(name) ? message : `${name}: ${message}`
        if (!leaves.includes(text)) leaves.push(text)
        return
      }
    }
  }
  visit(error)
  return `configuration error: ${leaves.join("; ")}`
}
