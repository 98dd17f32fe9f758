/**
 * Rate limits: per authenticated agent, per client address for registration, and
 * faucet claims per client address per UTC day.
 *
 * The algorithm is `@effect/experimental`'s `RateLimiter` (token bucket, on Effect's
 * `Clock`, so `TestClock` drives it). Its memory store never forgets a key, and the
 * per-address keys are chosen by whoever connects, so this module supplies a store
 * with the same arithmetic and a bound on how many keys it holds: when full it drops
 * buckets that have refilled completely (indistinguishable from absent ones), and
 * only if none has, the oldest.
 */
import * as RateLimiter from "@effect/experimental/RateLimiter"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Duration, Effect, Layer, Option } from "effect"
import { RateLimited } from "./errors.js"

export interface RateLimitsShape {
  /** One request of an authenticated agent. */
  readonly agent: (agentId: string) => Effect.Effect<void, RateLimited>
  /** One registration from a client address. */
  readonly registration: (address: string) => Effect.Effect<void, RateLimited>
  /**
   * Reserves one of the address's faucet claims for today; the effect it returns gives
   * the reservation back (for a claim the ledger then refused: only paid claims count).
   */
  readonly faucetClaim: (address: string) => Effect.Effect<Effect.Effect<void>, RateLimited>
}

export interface RateLimitSettings {
  readonly agentRequestsPerSecond: number
  readonly registrationsPerMinute: number
  readonly faucetClaimsPerAddressPerDay: number
  readonly maxKeys: number
}

export const make = (settings: RateLimitSettings): Effect.Effect<RateLimitsShape> =>
  RateLimiter.make.pipe(
    Effect.provide(layerStoreBounded(settings.maxKeys)),
    Effect.map((limiter) => {
      const consume = (key: string, limit: number, window: Duration.Duration, label: string) =>
        limiter.consume({ algorithm: "token-bucket", onExceeded: "fail", window, limit, key }).pipe(
          Effect.asVoid,
          Effect.catchAll((error) =>
            Effect.fail(
              new RateLimited({
                limit: label,
                retryAfterMs: error.reason === "Exceeded" ? Math.max(1, Math.ceil(Duration.toMillis(error.retryAfter))) : 1_000
              })
            )
          )
        )
      const second = Duration.seconds(1)
      const minute = Duration.minutes(1)
      const agentLabel = `${settings.agentRequestsPerSecond} requests/s per agent`
      const registrationLabel = `${settings.registrationsPerMinute} registrations/min per address`
      const faucet = dailyQuota({
        perDay: settings.faucetClaimsPerAddressPerDay,
        maxKeys: settings.maxKeys,
        label: `${settings.faucetClaimsPerAddressPerDay} faucet claims/day per address`
      })
      return {
        agent: (agentId) => consume(`a:${agentId}`, settings.agentRequestsPerSecond, second, agentLabel),
        registration: (address) => consume(`r:${address}`, settings.registrationsPerMinute, minute, registrationLabel),
        faucetClaim: faucet
      }
    })
  )

const DAY_MS = 86_400_000

interface DayCount {
  readonly day: number
  count: number
}

/**
 * At most `perDay` reservations per key per UTC day (the ledger's faucet day), on
 * Effect's `Clock`. A calendar day rather than a token bucket: a refused caller is
 * told the one time its allowance comes back, midnight UTC. Holds at most `maxKeys`
 * keys: when full it drops the keys of past days (they count nothing), and only if
 * none is stale, the oldest tenth, which lets those addresses claim again today;
 * the ledger's global daily cap still bounds what that can pay.
 */
export const dailyQuota = (options: { readonly perDay: number; readonly maxKeys: number; readonly label: string }) => {
  const counts = new Map<string, DayCount>()
  const makeRoom = (today: number) => {
    if (counts.size < options.maxKeys) return
    for (const [key, entry] of counts) if (entry.day !== today) counts.delete(key)
    if (counts.size >= options.maxKeys) {
      let drop = Math.max(1, Math.floor(options.maxKeys / 10))
      for (const key of counts.keys()) {
        if (drop-- <= 0) break
        counts.delete(key)
      }
    }
  }
  return (key: string): Effect.Effect<Effect.Effect<void>, RateLimited> =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const today = Math.floor(now / DAY_MS)
        let entry = counts.get(key)
        if (entry === undefined || entry.day !== today) {
          if (entry === undefined) makeRoom(today)
          entry = { day: today, count: 0 }
          counts.set(key, entry)
        }
        if (entry.count >= options.perDay) {
          return Effect.fail(new RateLimited({ limit: options.label, retryAfterMs: Math.max(1, (today + 1) * DAY_MS - now) }))
        }
        // Checked and taken in one synchronous step: concurrent claims cannot both take the last one.
        entry.count++
        const reserved = entry
        return Effect.succeed(Effect.sync(() => {
          if (counts.get(key) === reserved && reserved.count > 0) reserved.count--
        }))
      })
    )
}

/**
 * The caller's address: the socket's peer, or (only when `trustProxy`) what the
 * proxy reports in `Fly-Client-IP` or the first `X-Forwarded-For` entry.
 */
export const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustProxy: boolean): string => {
  if (trustProxy) {
    const fly = request.headers["fly-client-ip"]
    if (fly !== undefined && fly.length > 0 && fly.length <= 64) return fly.trim()
    const forwarded = request.headers["x-forwarded-for"]
    if (forwarded !== undefined && forwarded.length > 0) {
      const first = forwarded.split(",", 1)[0]!.trim()
      if (first.length > 0 && first.length <= 64) return first
    }
  }
  return Option.getOrElse(request.remoteAddress, () => "unknown")
}

interface Bucket {
  tokens: number
  lastRefillMs: number
  readonly limit: number
  readonly refillMs: number
}

interface Window {
  count: number
  expiresAtMs: number
}

/** `RateLimiter.layerStoreMemory`'s arithmetic, holding at most `maxKeys` keys. */
export const layerStoreBounded = (maxKeys: number): Layer.Layer<RateLimiter.RateLimiterStore> =>
  Layer.sync(RateLimiter.RateLimiterStore, () => {
    const buckets = new Map<string, Bucket>()
    const windows = new Map<string, Window>()

    const makeRoom = <V>(map: Map<string, V>, idle: (v: V) => boolean) => {
      if (map.size < maxKeys) return
      for (const [key, value] of map) if (idle(value)) map.delete(key)
      // Everything is busy: drop the oldest tenth rather than grow without bound.
      if (map.size >= maxKeys) {
        let drop = Math.max(1, Math.floor(maxKeys / 10))
        for (const key of map.keys()) {
          if (drop-- <= 0) break
          map.delete(key)
        }
      }
    }

    return RateLimiter.RateLimiterStore.of({
      fixedWindow: (options) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const refillMs = Duration.toMillis(options.refillRate)
            const now = clock.unsafeCurrentTimeMillis()
            let counter = windows.get(options.key)
            if (counter === undefined || counter.expiresAtMs <= now) {
              if (counter === undefined) makeRoom(windows, (w) => w.expiresAtMs <= now)
              counter = { count: 0, expiresAtMs: now }
              windows.set(options.key, counter)
            }
            if (options.limit !== undefined && counter.count + options.tokens > options.limit) {
              return [counter.count + options.tokens, counter.expiresAtMs - now] as const
            }
            counter.count += options.tokens
            counter.expiresAtMs += refillMs * options.tokens
            return [counter.count, counter.expiresAtMs - now] as const
          })
        ),
      tokenBucket: (options) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const refillMs = Duration.toMillis(options.refillRate)
            const now = clock.unsafeCurrentTimeMillis()
            let bucket = buckets.get(options.key)
            if (bucket === undefined) {
              makeRoom(buckets, (b) => b.tokens + (now - b.lastRefillMs) / b.refillMs >= b.limit)
              bucket = { tokens: options.limit, lastRefillMs: now, limit: options.limit, refillMs }
              buckets.set(options.key, bucket)
            } else {
              const add = Math.floor((now - bucket.lastRefillMs) / refillMs)
              if (add > 0) {
                bucket.tokens = Math.min(options.limit, bucket.tokens + add)
                bucket.lastRefillMs += add * refillMs
              }
            }
            const next = bucket.tokens - options.tokens
            if (options.allowOverflow || next >= 0) bucket.tokens = next
            return next
          })
        )
    })
  })
