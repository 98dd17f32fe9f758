/**
 * Exact money: micro-USDC (6 decimals) in a branded `bigint`.
 *
 * Parsing happens only at the edges (decimal strings and JSON numbers); inside the
 * program every amount is an integer count of micro-USDC and no binary float is
 * ever stored or used in arithmetic.
 */
import { Brand, Either, ParseResult, Schema } from "effect"

export type Usdc = bigint & Brand.Brand<"Usdc">

export const DECIMALS = 6
export const MICROS_PER_USDC = 1_000_000n

/**
 * The largest amount any single value may hold. It keeps every sum the ledger can
 * form well inside a signed 64-bit column (SQLite INTEGER, PostgreSQL BIGINT):
 * 10^15 micro-USDC is one billion USDC.
 */
export const MAX_MICROS = 1_000_000_000_000_000n

export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", {
  input: Schema.String,
  message: Schema.String
}) {}

const invalid = (input: unknown, reason: string) =>
  Either.left(new InvalidAmount({ input: String(input), message: `invalid amount ${JSON.stringify(String(input))}: ${reason}` }))

const nominal = Brand.nominal<Usdc>()

/** Wraps an integer micro-USDC count, checking range. */
export const fromMicros = (micros: bigint): Either.Either<Usdc, InvalidAmount> => {
  if (micros < 0n) return invalid(micros, "must not be negative")
  if (micros > MAX_MICROS) return invalid(micros, `exceeds the maximum of ${format(nominal(MAX_MICROS))} USDC`)
  return Either.right(nominal(micros))
}

/**
 * For literals in code and tests: throws the `InvalidAmount` that `fromMicros`
 * found on a bad value. Input from outside goes through `fromMicros`.
 */
export const unsafeMicros = (micros: bigint | number): Usdc => orThrow(fromMicros(BigInt(micros)))

/** Throws the error itself, so its message (input and reason) is what a stack trace shows. */
const orThrow = (result: Either.Either<Usdc, InvalidAmount>): Usdc => Either.getOrThrowWith(result, (error) => error)

export const zero: Usdc = nominal(0n)

const DECIMAL = /^(\d+)(?:\.(\d*))?$/

/**
 * Parses a decimal string such as "12", "12.5" or "0.000001". More than six places,
 * signs, exponents and anything else are rejected.
 */
export const fromDecimal = (input: string): Either.Either<Usdc, InvalidAmount> => {
  const text = input.trim()
  if (text.startsWith("-")) return invalid(input, "must not be negative")
  const match = DECIMAL.exec(text)
  if (match === null) return invalid(input, "expected a decimal number of USDC such as \"1.50\"")
  const fraction = match[2] ?? ""
  if (fraction.length > DECIMALS) return invalid(input, `more than ${DECIMALS} decimal places`)
  return fromMicros(BigInt(match[1]!) * MICROS_PER_USDC + BigInt(fraction.padEnd(DECIMALS, "0")))
}

/**
 * For literals in code and tests: `Usdc.make("1.50")`. On a bad value it throws the
 * `InvalidAmount` that `fromDecimal` found (naming the input and the reason); text
 * from outside goes through `fromDecimal`, whose `Either` is also an `Effect`.
 */
export const make = (input: string): Usdc => orThrow(fromDecimal(input))

/**
 * Float noise tolerated on JSON numbers: 1e-9 USDC, i.e. 1/1000 of a micro-USDC.
 * Expressed in nano-micro units (10^-9 micro) so the check stays in integers.
 */
const NOISE_LIMIT_NANO_MICROS = 1_000_000n // 10^-3 micro = 10^6 units of 10^-9 micro

/**
 * Accepts a JSON number only when it is within float noise (< 1e-9 USDC) of a
 * micro-USDC value, so `123 * 0.00001` (= 0.0012300000000000002) is 0.00123 USDC
 * while 0.0000015 is rejected. The check is exact: the number's shortest
 * round-trip decimal text is expanded into integers, never multiplied as a float.
 */
export const fromNumber = (input: number): Either.Either<Usdc, InvalidAmount> => {
  if (!Number.isFinite(input)) return invalid(input, "must be a finite number")
  if (input < 0) return invalid(input, "must not be negative")
  const exact = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(input))
  if (exact === null) return invalid(input, "not a plain decimal number")
  const digits = exact[1]! + (exact[2] ?? "")
  // value = digits × 10^scale USDC; convert to units of 10^-15 USDC (10^-9 micro).
  const scale = Number(exact[3] ?? "0") - (exact[2] ?? "").length
  const shift = scale + 15
  if (shift < 0) {
    // Digits finer than 10^-15 USDC are far below the noise limit: truncating them
    // cannot turn an accepted value into a rejected one or the reverse.
    const kept = digits.length + shift > 0 ? BigInt(digits.slice(0, digits.length + shift)) : 0n
    return fromNanoMicros(input, kept)
  }
  if (shift > 40) return invalid(input, "too large")
  return fromNanoMicros(input, BigInt(digits) * 10n ** BigInt(shift))
}

const fromNanoMicros = (input: number, nanoMicros: bigint): Either.Either<Usdc, InvalidAmount> => {
  const UNIT = 1_000_000_000n
  const micros = (nanoMicros + UNIT / 2n) / UNIT
  const noise = nanoMicros - micros * UNIT
  if ((noise < 0n ? -noise : noise) >= NOISE_LIMIT_NANO_MICROS) {
    return invalid(input, `more precise than 1 micro-USDC (${DECIMALS} decimal places)`)
  }
  return fromMicros(micros)
}

export interface FormatOptions {
  /** Append " USDC". Default false. */
  readonly unit?: boolean | undefined
}

/** Fixed 6-place decimal text: 1500000n → "1.500000", or "1.500000 USDC" with `{ unit: true }`. */
export const format = (amount: bigint, options?: FormatOptions): string => {
  const negative = amount < 0n
  const abs = negative ? -amount : amount
  const whole = abs / MICROS_PER_USDC
  const fraction = (abs % MICROS_PER_USDC).toString().padStart(DECIMALS, "0")
  const text = `${negative ? "-" : ""}${whole}.${fraction}`
  return options?.unit === true ? `${text} USDC` : text
}

export const isPositive = (amount: Usdc): boolean => amount > 0n

export const min = (a: Usdc, b: Usdc): Usdc => (a < b ? a : b)

export const max = (a: Usdc, b: Usdc): Usdc => (a > b ? a : b)

/**
 * `a + b`. Two amounts within range can add up past `MAX_MICROS` (one billion
 * USDC), which no ledger column may hold: that throws `InvalidAmount`, as a
 * program error rather than an outcome to handle.
 */
export const add = (a: Usdc, b: Usdc): Usdc => orThrow(fromMicros(a + b))

/**
 * `a - b`, refused with `InvalidAmount` when `b` exceeds `a`: an amount is never
 * negative, and what to do when it would be (refuse, cap, owe) is the caller's call.
 */
export const sub = (a: Usdc, b: Usdc): Either.Either<Usdc, InvalidAmount> =>
  a >= b ? Either.right(nominal(a - b)) : invalid(`${format(a)} - ${format(b)}`, "the result would be negative")

/** Sums amounts already known valid; past `MAX_MICROS` it throws `InvalidAmount`, as `add` does. */
export const sum = (amounts: Iterable<Usdc>): Usdc => {
  let total = 0n
  for (const amount of amounts) total += amount
  return orThrow(fromMicros(total))
}

/** Integer micro-USDC in memory, a bigint or a number/string column from SQL. */
export const Micros: Schema.Schema<Usdc, bigint> = Schema.BigIntFromSelf.pipe(
  Schema.filter((n) => n >= 0n && n <= MAX_MICROS, { message: () => "micro-USDC out of range" }),
  Schema.fromBrand(nominal)
)

/**
 * The wire form of an amount: a decimal string or a float-noise-free JSON number in,
 * a fixed 6-place decimal string out.
 */
export const FromWire: Schema.Schema<Usdc, string | number> = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.typeSchema(Micros),
  {
    strict: true,
    decode: (input, _, ast) =>
      Either.mapLeft(
        typeof input === "string" ? fromDecimal(input) : fromNumber(input),
        (error) => new ParseResult.Type(ast, input, error.message)
      ),
    encode: (amount) => ParseResult.succeed(format(amount))
  }
).annotations({
  identifier: "Usdc",
  description: "USDC amount: a decimal string with at most 6 places (\"1.50\") or a JSON number; responses use 6-place strings"
})

/** Like FromWire, but zero is rejected: escrow amounts, mandate limits. */
export const PositiveFromWire: Schema.Schema<Usdc, string | number> = FromWire.pipe(
  Schema.filter((amount) => amount > 0n, { message: () => "must be greater than zero" })
)
