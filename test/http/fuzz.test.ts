/**
 * Fuzzing the settlement API from its own contract: every operation in the running
 * server's `/openapi.json` gets requests built from its parameters and body schema,
 * mixing valid values (the test's wallets, escrows, mandates, amounts) with hostile
 * ones: wrong types, huge and float amounts, unicode, deep nesting, broken JSON,
 * wrong content types, bad and missing keys. Over a real server on a real SQLite file.
 *
 * For every request: no 5xx; every refusal is the one error shape
 * `{error, message, field?, details?}`; and a refusal moves no money (every tracked
 * balance and every system account is the same before and after). At the end the
 * ledger verifies clean. `FUZZ_RUNS` sets the cases per operation (default 150);
 * `FUZZ_ONLY` keeps the operations whose "METHOD /path" contains it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { SystemAccount, type WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { agent, type Harness, serve } from "./harness.js"

const RUNS_PER_OPERATION = Number(process.env["FUZZ_RUNS"] ?? 150)

interface Operation {
  readonly method: string
  readonly path: string
  readonly parameters: ReadonlyArray<{ readonly name: string; readonly in: string; readonly schema: any }>
  readonly body: any | undefined
  readonly secured: boolean
}

interface FuzzRequest {
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string | Uint8Array | undefined
}

const operationsOf = (spec: any): ReadonlyArray<Operation> =>
  Object.entries<any>(spec.paths).flatMap(([path, ops]) =>
    Object.entries<any>(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content?.["application/json"]?.schema,
      secured: (op.security ?? []).length > 0
    })))

/** What a `$ref` or inline schema names, for picking valid values. */
const kindOf = (name: string, schema: any, spec: any): string => {
  const ref: string | undefined = schema?.$ref ?? schema?.anyOf?.find((s: any) => s.$ref)?.$ref
  const refName = ref?.split("/").pop()
  if (refName === "WalletAddress" || /wallet|address/.test(name)) return "wallet"
  if (refName === "EscrowId" || name === "escrow_id" || name === "cursor") return "escrow"
  if (/^mandate_id$/.test(name) || schema?.pattern?.startsWith("^mdt_")) return "mandate"
  if (refName === "Usdc" || /_usdc$/.test(name)) return "amount"
  if (name === "metadata" || refName === "Metadata") return "metadata"
  if (/_at$/.test(name)) return "time"
  if (name === "referral_code") return "referral"
  const resolved = ref === undefined ? schema : spec.components?.schemas?.[refName!]
  if (resolved?.enum) return "enum:" + resolved.enum.join("|")
  if (resolved?.type === "boolean") return "boolean"
  if (resolved?.type === "integer" || name === "timeout_ms" || name === "limit") return "integer"
  return "string"
}

const unicode = fc.string({ unit: "binary", maxLength: 40 })
const asciiHeader = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 })

/** Anything JSON can carry, plus the values that break naive number handling. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  unicode,
  fc.constantFrom(
    null, true, false, 0, -0, -1, 1e308, -1e308, 1e21, 2 ** 53 + 1, 0.1 + 0.2, 1.0000001, 0.0000015, Number.MIN_VALUE,
    "", " ", "NaN", "Infinity", "-1", "1e6", "0x10", "1,5", "١٢٣", "99999999999999999999999999", "1.0000001", "\u0000", "💸".repeat(100),
    "x".repeat(10_000), [], {}, [[[[[]]]]], { "__proto__": { a: 1 } }, { constructor: "x" }
  )
)

const amounts = fc.oneof(
  fc.constantFrom("1", "0.5", "0.000001", "10", 1, 0.25, 2.5, "1000000000", "0", 0, "-1", -0.5, "1.1234567", 1e-7, 1e15, "  1  ", "1.", ".5"),
  fc.integer({ min: 0, max: 2_000_000 }).map((m) => Usdc.format(BigInt(m))),
  fc.double({ noNaN: false }),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String)
)

/** A generated value as text. `String` throws on the null-prototype objects fast-check makes, so those go as JSON. */
const asText = (value: unknown): string =>
  value !== null && typeof value === "object" && Object.getPrototypeOf(value) === null ? JSON.stringify(value) : String(value)

const nested = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth)

interface Pools {
  readonly wallets: Array<string>
  readonly escrows: Array<string>
  readonly mandates: Array<string>
  readonly referrals: Array<string>
  readonly keys: Array<string>
}

const valueFor = (kind: string, pools: Pools): fc.Arbitrary<unknown> => {
  const pick = (values: ReadonlyArray<string>) => (values.length === 0 ? fc.constant("none") : fc.constantFrom(...values))
  const valid: fc.Arbitrary<unknown> = kind === "wallet"
    ? fc.oneof(pick(pools.wallets), fc.stringMatching(/^0x[0-9a-fA-F]{40}$/))
    : kind === "escrow"
    ? fc.oneof(pick(pools.escrows), fc.stringMatching(/^esc_[0-9a-z]{10,40}$/))
    : kind === "mandate"
    ? fc.oneof(pick(pools.mandates), fc.stringMatching(/^mdt_[0-9a-z]{10,40}$/))
    : kind === "referral"
    ? pick(pools.referrals)
    : kind === "amount"
    ? amounts
    : kind === "metadata"
    ? fc.oneof(fc.dictionary(unicode, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), fc.constant({ fly_region: "iad" }))
    : kind === "time"
    ? fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.double(), fc.integer())
    : kind.startsWith("enum:")
    ? fc.constantFrom(...kind.slice(5).split("|"))
    : kind === "boolean"
    ? fc.boolean()
    : kind === "integer"
    ? fc.oneof(fc.integer(), fc.constantFrom(1, 100, 900_000, 2 ** 31, 2 ** 53 + 1, 1.5, -1))
    : fc.oneof(unicode, fc.constantFrom("agent", "d", "a".repeat(201), "a".repeat(2_001)))
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: junk })
}

/** A body for the operation: its properties (valid or not, some left out, some extra), encoded well or badly. */
const bodyFor = (op: Operation, spec: any, pools: Pools): fc.Arbitrary<{ text: string | Uint8Array | undefined; contentType: string | undefined }> => {
  const properties: Record<string, any> = op.body?.properties ?? {}
  const fields = Object.fromEntries(
    Object.entries(properties).map(([name, schema]) => [name, fc.option(valueFor(kindOf(name, schema, spec), pools), { nil: undefined, freq: 6 })])
  )
  const object = fc.tuple(fc.record(fields), fc.dictionary(unicode, junk, { maxKeys: 2 })).map(([known, extra]) => {
    const out: Record<string, unknown> = { ...extra }
    for (const [k, v] of Object.entries(known)) if (v !== undefined) out[k] = v
    return out
  })
  const json = object.map((o) => JSON.stringify(o))
  const text: fc.Arbitrary<string | Uint8Array | undefined> = fc.oneof(
    { weight: 12, arbitrary: json },
    // Deep nesting, around the limit and far past it, inside a field or as the whole body.
    { weight: 2, arbitrary: fc.tuple(json, fc.oneof(fc.integer({ min: 28, max: 40 }), fc.integer({ min: 1_000, max: 20_000 })), fc.boolean()).map(([j, depth, whole]) =>
      whole ? nested(depth) : j.replace(/^\{/, `{"deep":${nested(depth)},`).replace(/,}$/, "}")) },
    { weight: 1, arbitrary: fc.oneof(json.map((j) => j.slice(0, Math.max(1, j.length - 3))), unicode, fc.constantFrom("", "null", "[]", "1", '"x"', "{", "{}}", "\uFEFF{}", "{\"a\":1,}")) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
  const contentType = fc.oneof(
    { weight: 10, arbitrary: fc.constant("application/json") },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        undefined, "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded", "application/xml", "application/octet-stream", "application/vnd.api+json", "", ";", "json"
      )
    }
  )
  return fc.record({ text, contentType })
}

const requestFor = (op: Operation, spec: any, pools: Pools): fc.Arbitrary<FuzzRequest> => {
  const pathParams = op.parameters.filter((p) => p.in === "path")
  const queryParams = op.parameters.filter((p) => p.in === "query")
  const headerParams = op.parameters.filter((p) => p.in === "header")
  const segment = (p: Operation["parameters"][number]) =>
    fc.oneof({ weight: 3, arbitrary: valueFor(kindOf(p.name, p.schema, spec), pools).map(asText) }, { weight: 1, arbitrary: unicode })
      .map((v) => encodeURIComponent(v))
  const key = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...pools.keys).map((k) => `Bearer ${k}`) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer pk_" + "A".repeat(43), "Bearer " + "x".repeat(600)) },
    { weight: 1, arbitrary: asciiHeader.map((s) => `Bearer ${s}`) }
  )
  return fc.record({
    path: fc.tuple(fc.tuple(...pathParams.map(segment)), fc.tuple(...queryParams.map((p) =>
      fc.option(fc.oneof(valueFor(kindOf(p.name, p.schema, spec), pools).map(asText), unicode), { nil: undefined })
    ))).map(([segments, query]) => {
      let path = op.path
      pathParams.forEach((p, i) => (path = path.replace(`{${p.name}}`, segments[i]!)))
      const search = new URLSearchParams()
      queryParams.forEach((p, i) => query[i] !== undefined && search.set(p.name, query[i]!))
      const qs = search.toString()
      return qs === "" ? path : `${path}?${qs}`
    }),
    key,
    extraHeaders: fc.tuple(...headerParams.map(() => fc.option(fc.oneof(asciiHeader, fc.constantFrom("k-1", "")), { nil: undefined }))),
    body: op.body === undefined ? fc.option(bodyFor(op, spec, pools), { freq: 8 }) : bodyFor(op, spec, pools)
  }).map(({ path, key, extraHeaders, body }) => {
    const headers: Record<string, string> = {}
    if (key !== undefined) headers["authorization"] = key
    headerParams.forEach((p, i) => extraHeaders[i] !== undefined && (headers[p.name] = extraHeaders[i]!))
    if (body?.contentType !== undefined) headers["content-type"] = body.contentType
    return { path, headers, body: body?.text }
  })
}

const ERROR_KEYS = new Set(["error", "message", "field", "details"])

/** The one error shape, or why not. */
const shapeProblem = (body: unknown): string | undefined => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "not a JSON object"
  const record = body as Record<string, unknown>
  for (const key of Object.keys(record)) if (!ERROR_KEYS.has(key)) return `unexpected key ${key}`
  if (typeof record["error"] !== "string" || record["error"] === "") return "no error code"
  if (typeof record["message"] !== "string" || record["message"] === "") return "no message"
  if (record["field"] !== undefined && typeof record["field"] !== "string") return "field is not a string"
  const details = record["details"]
  if (details !== undefined) {
    if (typeof details !== "object" || details === null || Array.isArray(details)) return "details is not an object"
    for (const value of Object.values(details)) if (typeof value !== "string") return "a detail is not a string"
  }
  return undefined
}

/** Every balance a request could move: the tracked wallets and every system account. */
const balances = (h: Harness, wallets: ReadonlyArray<string>) =>
  Effect.runPromise(Effect.gen(function*() {
    const out: Record<string, string> = {}
    for (const wallet of wallets) {
      const b = yield* h.ledger.balance(wallet as WalletAddress)
      out[wallet] = `${Usdc.format(b.available)}/${Usdc.format(b.locked)}`
    }
    for (const account of Object.values(SystemAccount)) out[account] = Usdc.format(yield* h.ledger.systemBalance(account))
    return out
  }))

describe("fuzzing the settlement API from /openapi.json", () => {
  it.scopedLive("no 5xx, one error shape, no money moved by a refusal", () =>
    Effect.gen(function*() {
      const h = yield* serve({
        sqlite: true,
        // High enough that the fuzzer reaches the handlers; the limits have their own tests.
        settlement: { agentRequestsPerSecond: 1_000_000, registrationsPerMinute: 1_000_000 }
      })
      const payer = yield* agent(h, "payer", "1000")
      const payee = yield* agent(h, "payee", "5")
      const other = yield* agent(h, "other")
      const opened = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "2", description: "seeded" }
      })
      const mandate = yield* h.http("POST", "/api/mandates", {
        key: payer.key,
        body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "3" }
      })
      const pools: Pools = {
        wallets: [payer.wallet, payee.wallet, other.wallet],
        escrows: [opened.body.escrow_id],
        mandates: [mandate.body.mandate_id],
        referrals: [payer.referralCode, payee.referralCode],
        keys: [payer.key, payee.key, other.key]
      }
      const spec = (yield* h.http("GET", "/openapi.json")).body
      const operations = operationsOf(spec)
      expect(operations.length).toBeGreaterThanOrEqual(14)

      const seen = new Map<number, number>()
      // The balances after the last request: a refusal must leave them as they are.
      let current = yield* Effect.promise(() => balances(h, pools.wallets))
      const only = process.env["FUZZ_ONLY"]
      for (const op of operations) {
        if (only !== undefined && !`${op.method} ${op.path}`.includes(only)) continue
        const started = Date.now()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(requestFor(op, spec, pools), async (request) => {
              const before = current
              const what = `${op.method} ${request.path} ${JSON.stringify(request.headers)} ${String(request.body).slice(0, 200)}`
              // A request left unanswered is a failure of its own, not a stuck suite.
              const response = await fetch(h.base + request.path, {
                method: op.method,
                headers: request.headers,
                signal: AbortSignal.timeout(15_000),
                ...(request.body === undefined || op.method === "GET" ? {} : { body: request.body })
              }).catch((error) => {
                throw new Error(`${what}: ${String(error)}`)
              })
              const text = await response.text()
              seen.set(response.status, (seen.get(response.status) ?? 0) + 1)
              const outcome = `${what} -> ${response.status} ${text.slice(0, 300)}`
              expect(response.status, outcome).toBeLessThan(500)
              if (response.status >= 400) {
                let body: unknown
                try {
                  body = JSON.parse(text)
                } catch {
                  body = text
                }
                expect(shapeProblem(body), outcome).toBeUndefined()
                current = await balances(h, pools.wallets)
                expect(current, outcome).toEqual(before)
              } else if (response.status < 300 && text !== "") {
                current = await balances(h, pools.wallets)
                // New escrows and mandates join the pools, so later cases act on them.
                const body = JSON.parse(text)
                if (typeof body.escrow_id === "string" && !pools.escrows.includes(body.escrow_id)) pools.escrows.push(body.escrow_id)
                if (typeof body.mandate_id === "string" && !pools.mandates.includes(body.mandate_id)) pools.mandates.push(body.mandate_id)
              }
            }),
            { numRuns: RUNS_PER_OPERATION }
          )
        )
        if (process.env["FUZZ_TIMING"]) console.log(op.method, op.path, Date.now() - started, "ms")
      }
      const report = yield* h.ledger.verify
      expect(report.violations).toEqual([])
      // The fuzzer reached the handlers (successes) as well as the refusals.
      if (only !== undefined) return
      expect([...seen.keys()].some((s) => s >= 200 && s < 300), JSON.stringify([...seen])).toBe(true)
      expect([...seen.keys()].filter((s) => s >= 400).length, JSON.stringify([...seen])).toBeGreaterThanOrEqual(5)
    }), { timeout: Math.max(120_000, RUNS_PER_OPERATION * 600) })
})
