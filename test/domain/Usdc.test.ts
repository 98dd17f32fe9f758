import { Either, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Usdc from "../../src/domain/Usdc.js"

const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got Left: ${JSON.stringify(e.left)}`)
  return e.right
}
const leftMessage = <A, E extends { message: string }>(e: Either.Either<A, E>): string => {
  if (Either.isRight(e)) throw new Error(`expected Left, got Right: ${String(e.right)}`)
  return e.left.message
}

const caught = (f: () => unknown): unknown => {
  try {
    f()
  } catch (error) {
    return error
  }
  throw new Error("expected a throw")
}

/** Every valid micro value: 0 .. 10^15 (one billion USDC). */
const anyMicros = fc.bigInt({ min: 0n, max: Usdc.MAX_MICROS })

describe("Usdc.fromDecimal", () => {
  it.each([
    ["0", 0n],
    ["1", 1_000_000n],
    ["12.5", 12_500_000n],
    ["0.000001", 1n],
    ["1.50", 1_500_000n],
    ["007.000100", 7_000_100n],
    ["1000000000", Usdc.MAX_MICROS],
    ["999999999.999999", Usdc.MAX_MICROS - 1n]
  ])("parses %j exactly", (text, micros) => {
    expect(right(Usdc.fromDecimal(text))).toBe(micros)
  })

  it("tolerates surrounding whitespace but not whitespace inside", () => {
    expect(right(Usdc.fromDecimal("  1.5\n"))).toBe(1_500_000n)
    expect(right(Usdc.fromDecimal("\t2 "))).toBe(2_000_000n)
    expect(leftMessage(Usdc.fromDecimal("1 .5"))).toMatch(/expected a decimal/)
    expect(leftMessage(Usdc.fromDecimal("1. 5"))).toMatch(/expected a decimal/)
    expect(leftMessage(Usdc.fromDecimal("1 000"))).toMatch(/expected a decimal/)
    expect(leftMessage(Usdc.fromDecimal("   "))).toMatch(/expected a decimal/)
  })

  it("rejects more than 6 decimal places, even trailing zeros", () => {
    expect(leftMessage(Usdc.fromDecimal("0.0000001"))).toMatch(/more than 6 decimal places/)
    expect(leftMessage(Usdc.fromDecimal("1.1234567"))).toMatch(/more than 6 decimal places/)
    expect(leftMessage(Usdc.fromDecimal("1.0000000"))).toMatch(/more than 6 decimal places/)
  })

  it.each(["-1", "-0.5", " -1"])("rejects the negative %j", (text) => {
    expect(leftMessage(Usdc.fromDecimal(text))).toMatch(/negative/)
  })

  it.each(["+1", "1e3", "1E-3", "0x10", ".5", "1,5", "1.5.0", "", "NaN", "Infinity", "1_000", "١", "abc", "1.5 USDC"])(
    "rejects the malformed %j",
    (text) => {
      const result = Usdc.fromDecimal(text)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("InvalidAmount")
        expect(result.left.input).toBe(text)
      }
    }
  )

  it("rejects values over the maximum of one billion USDC", () => {
    expect(leftMessage(Usdc.fromDecimal("1000000000.000001"))).toMatch(/exceeds the maximum/)
    expect(leftMessage(Usdc.fromDecimal("99999999999999999999"))).toMatch(/exceeds the maximum/)
  })

  it("make throws the InvalidAmount fromDecimal found, naming the input and the reason", () => {
    expect(Usdc.make("2.25")).toBe(2_250_000n)
    const thrown = caught(() => Usdc.make("0.1234567"))
    expect(thrown).toBeInstanceOf(Usdc.InvalidAmount)
    expect((thrown as Usdc.InvalidAmount).input).toBe("0.1234567")
    expect((thrown as Usdc.InvalidAmount).message).toBe(`invalid amount "0.1234567": more than 6 decimal places`)
    expect(() => Usdc.make("-1")).toThrow(/invalid amount "-1": must not be negative/)
  })

  it("unsafeMicros throws the InvalidAmount fromMicros found", () => {
    const thrown = caught(() => Usdc.unsafeMicros(-1))
    expect(thrown).toBeInstanceOf(Usdc.InvalidAmount)
    expect((thrown as Usdc.InvalidAmount).message).toMatch(/"-1": must not be negative/)
  })
})

describe("Usdc.fromNumber", () => {
  it("accepts values within float noise of a micro value", () => {
    // 123 * 0.00001 === 0.0012300000000000002 in binary floating point
    expect(123 * 0.00001).not.toBe(0.00123)
    expect(right(Usdc.fromNumber(123 * 0.00001))).toBe(1_230n)
    expect(0.1 + 0.2).not.toBe(0.3)
    expect(right(Usdc.fromNumber(0.1 + 0.2))).toBe(300_000n)
    expect(right(Usdc.fromNumber(1.15 * 100))).toBe(115_000_000n)
    expect(right(Usdc.fromNumber(0.000001))).toBe(1n)
    expect(right(Usdc.fromNumber(1e-6))).toBe(1n)
    expect(right(Usdc.fromNumber(1000))).toBe(1_000_000_000n)
    expect(right(Usdc.fromNumber(1e9))).toBe(Usdc.MAX_MICROS)
    expect(right(Usdc.fromNumber(0))).toBe(0n)
    expect(right(Usdc.fromNumber(-0))).toBe(0n)
  })

  it("rejects values finer than a micro beyond float noise", () => {
    expect(leftMessage(Usdc.fromNumber(0.0000015))).toMatch(/more precise than 1 micro-USDC/)
    expect(leftMessage(Usdc.fromNumber(1e-7))).toMatch(/more precise/)
    expect(leftMessage(Usdc.fromNumber(1.0000001))).toMatch(/more precise/)
    // 2e-9 USDC off a micro value: twice the noise limit
    expect(leftMessage(Usdc.fromNumber(1.000000002))).toMatch(/more precise/)
  })

  it("accepts up to (not including) 1e-9 USDC of noise", () => {
    // 0.5e-9 USDC above 1 micro: inside the noise band
    expect(right(Usdc.fromNumber(0.0000010005))).toBe(1n)
    expect(right(Usdc.fromNumber(0.0000009995))).toBe(1n)
    // exactly 1e-9 away is the limit and is refused
    expect(Either.isLeft(Usdc.fromNumber(0.000001001))).toBe(true)
  })

  it.each([-1, -0.000001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])("rejects %d", (n) => {
    expect(Either.isLeft(Usdc.fromNumber(n))).toBe(true)
  })

  it("rejects numbers over the maximum, including huge exponents", () => {
    expect(leftMessage(Usdc.fromNumber(1e9 + 0.000001))).toMatch(/exceeds the maximum/)
    expect(Either.isLeft(Usdc.fromNumber(1e21))).toBe(true)
    expect(Either.isLeft(Usdc.fromNumber(1e300))).toBe(true)
    expect(Either.isLeft(Usdc.fromNumber(Number.MAX_VALUE))).toBe(true)
  })

  it("property: fromNumber(Number(format(x))) == x for every micro value (all have at most 15 significant digits)", () => {
    fc.assert(
      fc.property(anyMicros, (x) => {
        expect(right(Usdc.fromNumber(Number(Usdc.format(x))))).toBe(x)
      }),
      { numRuns: 5_000 }
    )
  })

  it("property: a float computed as micros × 0.000001 is accepted as that micro value (up to 10^6 USDC)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000_000_000 }), (micros) => {
        expect(right(Usdc.fromNumber(micros * 0.000001))).toBe(BigInt(micros))
      }),
      { numRuns: 5_000 }
    )
  })

  it("property: a half-micro offset is always rejected", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000_000 }), (micros) => {
        expect(Either.isLeft(Usdc.fromNumber((micros + 0.5) / 1_000_000))).toBe(true)
      }),
      { numRuns: 2_000 }
    )
  })
})

describe("Usdc.format", () => {
  it.each([
    [0n, "0.000000"],
    [1n, "0.000001"],
    [1_500_000n, "1.500000"],
    [123_456_789n, "123.456789"],
    [Usdc.MAX_MICROS, "1000000000.000000"],
    [-1_500_000n, "-1.500000"]
  ])("formats %s as %s", (micros, text) => {
    expect(Usdc.format(micros)).toBe(text)
  })

  it("property: fromDecimal ∘ format is the identity on every micro value", () => {
    fc.assert(
      fc.property(anyMicros, (x) => {
        const text = Usdc.format(x)
        expect(text).toMatch(/^\d+\.\d{6}$/)
        expect(right(Usdc.fromDecimal(text))).toBe(x)
      }),
      { numRuns: 5_000 }
    )
  })

  it("property: format ∘ fromDecimal normalises any valid decimal text to 6 places", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 999_999_999n }), fc.stringMatching(/^\d{0,6}$/), (whole, fraction) => {
        const parsed = right(Usdc.fromDecimal(fraction === "" ? `${whole}` : `${whole}.${fraction}`))
        expect(Usdc.format(parsed)).toBe(`${whole}.${fraction.padEnd(6, "0")}`)
      }),
      { numRuns: 2_000 }
    )
  })
})

describe("Usdc range and helpers", () => {
  it("fromMicros accepts 0..MAX and rejects outside", () => {
    expect(right(Usdc.fromMicros(0n))).toBe(0n)
    expect(right(Usdc.fromMicros(Usdc.MAX_MICROS))).toBe(Usdc.MAX_MICROS)
    expect(leftMessage(Usdc.fromMicros(-1n))).toMatch(/negative/)
    expect(leftMessage(Usdc.fromMicros(Usdc.MAX_MICROS + 1n))).toMatch(/exceeds the maximum/)
    expect(() => Usdc.unsafeMicros(-1)).toThrow()
  })

  it("sum takes any iterable and re-checks the range", () => {
    expect(Usdc.sum([Usdc.make("1"), Usdc.make("2.5")])).toBe(3_500_000n)
    expect(Usdc.sum(new Set([Usdc.make("1"), Usdc.make("2")]).values())).toBe(3_000_000n)
    expect(Usdc.sum([])).toBe(0n)
    expect(() => Usdc.sum([Usdc.unsafeMicros(Usdc.MAX_MICROS), Usdc.unsafeMicros(1)])).toThrow(Usdc.InvalidAmount)
  })

  it("add adds exactly and refuses a total past the maximum", () => {
    expect(Usdc.add(Usdc.make("0.1"), Usdc.make("0.2"))).toBe(300_000n)
    expect(() => Usdc.add(Usdc.unsafeMicros(Usdc.MAX_MICROS), Usdc.unsafeMicros(1))).toThrow(/exceeds the maximum/)
  })

  it("sub refuses a negative result with a typed InvalidAmount", () => {
    expect(right(Usdc.sub(Usdc.make("1.5"), Usdc.make("0.5")))).toBe(1_000_000n)
    expect(right(Usdc.sub(Usdc.make("1"), Usdc.make("1")))).toBe(0n)
    const refused = Usdc.sub(Usdc.make("0.5"), Usdc.make("1.5"))
    expect(Either.isLeft(refused) && refused.left._tag).toBe("InvalidAmount")
    expect(leftMessage(refused)).toBe(`invalid amount "0.500000 - 1.500000": the result would be negative`)
  })

  it("min and max pick the smaller and the larger", () => {
    const [a, b] = [Usdc.make("1"), Usdc.make("2")]
    expect([Usdc.min(a, b), Usdc.min(b, a), Usdc.max(a, b), Usdc.max(b, a)]).toEqual([a, a, b, b])
  })

  it("format prints 6 places, with the unit on request", () => {
    expect(Usdc.format(Usdc.make("1.5"))).toBe("1.500000")
    expect(Usdc.format(Usdc.make("1.5"), { unit: false })).toBe("1.500000")
    expect(Usdc.format(Usdc.make("1.5"), { unit: true })).toBe("1.500000 USDC")
  })
})

describe("Usdc schemas", () => {
  const decode = Schema.decodeUnknownEither(Usdc.FromWire)
  const decodePositive = Schema.decodeUnknownEither(Usdc.PositiveFromWire)
  const encode = Schema.encodeSync(Usdc.FromWire)

  it("FromWire decodes strings and noise-free numbers and encodes 6-place strings", () => {
    expect(right(decode("1.5"))).toBe(1_500_000n)
    expect(right(decode(123 * 0.00001))).toBe(1_230n)
    expect(right(decode(0))).toBe(0n)
    expect(encode(Usdc.make("1.5"))).toBe("1.500000")
    expect(encode(Usdc.make("0"))).toBe("0.000000")
  })

  it("FromWire rejects bad input with the reason in the message", () => {
    for (const bad of ["1.0000001", "-1", "1e3", 0.0000015, -1, Number.NaN, null, true, {}, 10n]) {
      const result = decode(bad)
      expect(Either.isLeft(result), `input ${String(bad)}`).toBe(true)
    }
    const result = decode("1.0000001")
    if (Either.isLeft(result)) expect(result.left.message).toMatch(/more than 6 decimal places/)
  })

  it("PositiveFromWire rejects zero (string and number) and accepts one micro", () => {
    for (const zero of ["0", "0.000000", 0]) {
      const result = decodePositive(zero)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.message).toMatch(/greater than zero/)
    }
    expect(right(decodePositive("0.000001"))).toBe(1n)
  })

  it("a struct field names itself in the error", () => {
    const Terms = Schema.Struct({ amount_usdc: Usdc.PositiveFromWire })
    const result = Schema.decodeUnknownEither(Terms)({ amount_usdc: "1.0000001" })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toMatch(/amount_usdc/)
  })

  it("property: encode ∘ decode round-trips every micro value, from its string and from its number", () => {
    fc.assert(
      fc.property(anyMicros, (x) => {
        const text = Usdc.format(x)
        expect(right(decode(text))).toBe(x)
        expect(right(decode(Number(text)))).toBe(x)
        expect(encode(right(decode(text)))).toBe(text)
      }),
      { numRuns: 3_000 }
    )
  })

  it("Micros accepts in-range bigints only", () => {
    const micros = Schema.decodeUnknownEither(Usdc.Micros)
    expect(right(micros(5n))).toBe(5n)
    expect(Either.isLeft(micros(-1n))).toBe(true)
    expect(Either.isLeft(micros(Usdc.MAX_MICROS + 1n))).toBe(true)
    expect(Either.isLeft(micros(5))).toBe(true)
  })
})
