/**
 * The ledger's settings: defaults, explicit overrides, or Effect `Config` (environment
 * variables and Fly secrets), with every value validated before the ledger starts.
 */
import { Config, ConfigError, Duration, Either, Layer } from "effect"
import * as Usdc from "../domain/Usdc.js"
import { defaultFeeSchedule, parseRatePpm, validateSchedule } from "../domain/FeeSchedule.js"
import { LedgerConfig, type LedgerConfigShape } from "./Ledger.js"

export const defaults: LedgerConfigShape = {
  region: "local",
  fees: defaultFeeSchedule,
  defaultEscrowTimeout: Duration.minutes(15),
  maxEscrowTimeout: Duration.days(30),
  idempotencyKeyTtl: Duration.hours(24),
  faucetClaimAmount: Usdc.make("1"),
  // Generous enough for development and load tests; configurable for production.
  faucetTreasuryInitial: Usdc.make("1000000"),
  faucetDailyCap: 100_000,
  maxBatchSize: 256
}

export const make = (overrides: Partial<LedgerConfigShape> = {}): LedgerConfigShape => {
  const config = { ...defaults, ...overrides }
  Either.getOrThrow(validateSchedule(config.fees))
  return config
}

/** A fixed configuration: `LedgerConfig.layer({ region: "lhr" })`. */
export const layer = (overrides: Partial<LedgerConfigShape> = {}) => Layer.succeed(LedgerConfig, make(overrides))

const rate = (name: string, fallbackPpm: number) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(parseRatePpm(name, text), (e) => ConfigError.InvalidData([name], e.message))
    ),
    Config.withDefault(fallbackPpm)
  )

const usdc = (name: string, fallback: Usdc.Usdc) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(Usdc.fromDecimal(text), (e) => ConfigError.InvalidData([name], e.message))
    ),
    Config.withDefault(fallback)
  )

/**
 * From the environment: `FLY_REGION`, `ESCROW_FEE` ("0.01"), `REFERRAL_RATE` ("0.15",
 * or tiers "0.15,0.05"), `ESCROW_TIMEOUT` ("15 minutes"), `FAUCET_AMOUNT`,
 * `FAUCET_TREASURY`, `FAUCET_DAILY_CAP`, `IDEMPOTENCY_KEY_TTL` ("24 hours").
 */
export const fromEnv: Config.Config<LedgerConfigShape> = Config.all({
  region: Config.string("FLY_REGION").pipe(Config.withDefault(defaults.region)),
  feePpm: rate("ESCROW_FEE", defaults.fees.feePpm),
  referral: Config.string("REFERRAL_RATE").pipe(Config.withDefault("0.15")),
  defaultEscrowTimeout: Config.duration("ESCROW_TIMEOUT").pipe(Config.withDefault(defaults.defaultEscrowTimeout)),
  idempotencyKeyTtl: Config.duration("IDEMPOTENCY_KEY_TTL").pipe(
    Config.validate({ message: "IDEMPOTENCY_KEY_TTL must be longer than zero", validation: (d) => Duration.toMillis(d) > 0 }),
    Config.withDefault(defaults.idempotencyKeyTtl)
  ),
  faucetClaimAmount: usdc("FAUCET_AMOUNT", defaults.faucetClaimAmount),
  faucetTreasuryInitial: usdc("FAUCET_TREASURY", defaults.faucetTreasuryInitial),
  faucetDailyCap: Config.integer("FAUCET_DAILY_CAP").pipe(Config.withDefault(defaults.faucetDailyCap))
}).pipe(
  Config.mapOrFail(({ feePpm, referral, ...rest }) => {
    const tiers: Array<number> = []
    for (const part of referral.split(",")) {
      const parsed = parseRatePpm("REFERRAL_RATE", part)
      if (Either.isLeft(parsed)) return Either.left(ConfigError.InvalidData(["REFERRAL_RATE"], parsed.left.message))
      tiers.push(parsed.right)
    }
    const fees = validateSchedule({ feePpm, referralTiersPpm: tiers })
    if (Either.isLeft(fees)) return Either.left(ConfigError.InvalidData([fees.left.field], fees.left.message))
    return Either.right({ ...defaults, ...rest, fees: fees.right })
  })
)

export const layerConfig = Layer.effect(LedgerConfig, fromEnv)
