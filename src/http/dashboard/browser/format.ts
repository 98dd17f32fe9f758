/**
 * Money and time as the page shows them. Amounts arrive as decimal strings and are
 * turned into BigInt micro-USDC, never floats; times are shown in UTC.
 */

/** "1234.500000" -> 1234500000n. */
export const micros = (text: string): bigint => {
  let s = String(text)
  const negative = s.charAt(0) === "-"
  if (negative) s = s.slice(1)
  const [whole = "", fraction = ""] = s.split(".")
  const value = BigInt(whole || "0") * 1000000n + BigInt(fraction.slice(0, 6).padEnd(6, "0"))
  return negative ? -value : value
}

export const group = (digits: string): string => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",")

/** Micro-USDC as "1,234.50" (or all 6 places when exact). */
export const formatMicros = (value: bigint, exact: boolean): string => {
  const negative = value < 0n
  const v = negative ? -value : value
  let out: string
  if (exact) {
    out = group((v / 1000000n).toString()) + "." + (v % 1000000n).toString().padStart(6, "0")
  } else {
    if (v > 0n && v < 5000n) return (negative ? "-" : "") + "<0.01"
    const cents = (v + 5000n) / 10000n
    out = group((cents / 100n).toString()) + "." + (cents % 100n).toString().padStart(2, "0")
  }
  return (negative ? "-" : "") + out
}

/** Micro-USDC as the exact 6-place decimal the server speaks ("-12.345678"). */
export const exactText = (value: bigint): string => {
  const negative = value < 0n
  const v = negative ? -value : value
  return (negative ? "-" : "") + (v / 1000000n).toString() + "." + (v % 1000000n).toString().padStart(6, "0")
}

export const pad2 = (n: number): string => (n < 10 ? "0" : "") + n

/** UTC, second precision: operators compare regions across time zones. */
export const when = (iso: string): string => {
  const d = new Date(iso)
  return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
    pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds())
}

export const shortWallet = (wallet: string): string => wallet.slice(0, 6) + "…" + wallet.slice(-4)

/** A round step (1, 2 or 5 × 10^k micro-USDC) giving about four grid lines. */
export const niceStep = (maxMicros: bigint): bigint => {
  let raw = maxMicros / 4n
  if (raw < 1n) raw = 1n
  let pow = 1n
  while (pow * 10n <= raw) pow *= 10n
  for (const step of [1n, 2n, 5n, 10n]) if (pow * step >= raw) return pow * step
  return pow * 10n
}

/** An axis label: "3M", "25k", "1,200", or cents below one USDC. */
export const shortAmount = (value: bigint): string => {
  if (value === 0n) return "0"
  const whole = value / 1000000n
  if (whole >= 1000000n) return (whole / 1000000n).toString() + "M"
  if (whole >= 10000n) return (whole / 1000n).toString() + "k"
  if (whole >= 1n) return group(whole.toString())
  return formatMicros(value, false)
}

/** A time bucket's label: its date for day-wide buckets, else its time. */
export const bucketLabel = (ms: number, bucketMs: number): string => {
  const d = new Date(ms)
  if (bucketMs >= 86400000) return (d.getUTCMonth() + 1) + "/" + d.getUTCDate()
  return pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes())
}
