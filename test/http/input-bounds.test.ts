/**
 * Bounds on request bodies, over real servers on real SQLite files: JSON nested
 * deeper than 32 levels is a 400 naming `body` before anything recursive runs (a few
 * thousand levels would overflow a recursive decoder's stack), and a body that is not JSON by its
 * Content-Type is a 415. On every POST of the settlement API (with and without a
 * key), on MCP, and on the orchestrator's own routes, embedded and with a remote
 * settlement service. Nothing changes on any refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { exceedsDepth, MAX_JSON_DEPTH } from "../../src/http/jsonBody.js"
import { agent, type Reply, serve, snapshot } from "./harness.js"
import { connect, rest, startService } from "../mcp/harness.js"
import { type InProcess, register, request, startInProcess } from "../service/support.js"

const nestedArrays = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth)
/** A body of the route's shape with `extra` nested inside it (the body object is level 1). */
const withNesting = (fields: Record<string, unknown>, nested: string) =>
  JSON.stringify({ ...fields, extra: "__NESTED__" }).replace('"__NESTED__"', nested)

const tooDeep = { error: "invalid_request", field: "body" }

const expectTooDeep = (reply: Reply, what: string) => {
  expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(400)
  expect(reply.body).toMatchObject(tooDeep)
  expect(reply.body.message).toMatch(/deeper than 32 levels, the depth limit/)
}

const expectUnsupported = (reply: Reply, what: string) => {
  expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(415)
  expect(reply.body).toMatchObject({ error: "unsupported_media_type", field: "content-type" })
  expect(Object.keys(reply.body).sort()).toEqual(["error", "field", "message"])
}

const nonJsonBodies: ReadonlyArray<readonly [string, string]> = [
  ["multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="agent_name"\r\n\r\nx\r\n--b--\r\n'],
  ["application/x-www-form-urlencoded", "agent_name=x&wallet_address=0x0000000000000000000000000000000000000001"],
  ["text/plain", '{"agent_name":"x"}'],
  ["application/xml", "<agent_name>x</agent_name>"],
  ["application/octet-stream", '{"agent_name":"x"}']
]

describe("exceedsDepth", () => {
  it("counts arrays and objects outside strings, without recursion", () => {
    expect(exceedsDepth(nestedArrays(MAX_JSON_DEPTH))).toBe(false)
    expect(exceedsDepth(nestedArrays(MAX_JSON_DEPTH + 1))).toBe(true)
    expect(exceedsDepth(nestedObjects(MAX_JSON_DEPTH))).toBe(false)
    expect(exceedsDepth(nestedObjects(MAX_JSON_DEPTH + 1))).toBe(true)
    // Siblings do not add up; only nesting does.
    expect(exceedsDepth("[" + "[],".repeat(10_000) + "[]]")).toBe(false)
    // Brackets inside strings, escaped quotes and escaped backslashes are text.
    expect(exceedsDepth(JSON.stringify({ s: "[".repeat(1_000) }))).toBe(false)
    expect(exceedsDepth(JSON.stringify({ s: '\\"' + "{".repeat(1_000) }))).toBe(false)
    expect(exceedsDepth(JSON.stringify({ s: "\\" }) + nestedArrays(40))).toBe(true)
    expect(exceedsDepth(nestedArrays(1_000_000))).toBe(true)
    expect(exceedsDepth("")).toBe(false)
  })
})

describe("the settlement API's body bounds", () => {
  it.scoped("every POST and DELETE route answers deep JSON 400 naming body, with or without a key; nothing changes", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const escrow = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", description: "d" }
      })
      expect(escrow.status).toBe(201)
      const mandate = yield* h.http("POST", "/api/mandates", {
        key: payer.key,
        body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "2" }
      })
      expect(mandate.status).toBe(201)
      const routes: ReadonlyArray<readonly [string, string, Record<string, unknown>]> = [
        ["POST", "/api/agents", { agent_name: "deep" }],
        ["POST", "/api/agents/rotate-key", {}],
        ["POST", "/api/faucet/claim", { wallet_address: payer.wallet, agent_name: "payer" }],
        ["POST", "/api/mandates", { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "1" }],
        ["DELETE", `/api/mandates/${mandate.body.mandate_id}`, {}],
        ["POST", "/api/escrow/create", { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", description: "d" }],
        ["POST", "/api/escrow/release", { escrow_id: escrow.body.escrow_id }],
        ["POST", "/api/escrow/cancel", { escrow_id: escrow.body.escrow_id }]
      ]
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      for (const [method, path, fields] of routes) {
        for (const key of [payer.key, undefined]) {
          for (const nested of [nestedArrays(5_000), nestedObjects(5_000), nestedArrays(MAX_JSON_DEPTH)]) {
            const what = `${method} ${path} ${key === undefined ? "without" : "with"} a key, ${nested.slice(0, 8)}… ${nested.length} chars`
            const options = key === undefined ? { raw: withNesting(fields, nested) } : { raw: withNesting(fields, nested), key }
            expectTooDeep(yield* h.http(method, path, options), what)
          }
          // Metadata is free-form JSON, and nests as deep as the limit allows.
          if (path === "/api/escrow/create") {
            const raw = withNesting({ ...fields, metadata: "__META__" }, "1").replace('"__META__"', nestedObjects(5_000))
            expectTooDeep(yield* h.http(method, path, key === undefined ? { raw } : { raw, key }), `${method} ${path} metadata`)
          }
        }
      }
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)

      // At the limit: the body object (1) holds `metadata` nested 31 more levels; that is served.
      const atLimit = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        raw: JSON.stringify({ payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", description: "[[[[{{{{" })
          .replace(/}$/, `,"metadata":${nestedObjects(MAX_JSON_DEPTH - 1)}}`)
      })
      expect(atLimit.status, JSON.stringify(atLimit.body)).toBe(201)
      expect(atLimit.body.description).toBe("[[[[{{{{")
      // And the server keeps serving.
      expect((yield* h.http("GET", "/health")).status).toBe(200)
    }))

  it.scoped("a Content-Type other than JSON is 415 on every POST route, body or not; JSON with a charset is JSON", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const paths = ["/api/agents", "/api/agents/rotate-key", "/api/faucet/claim", "/api/mandates", "/api/escrow/create", "/api/escrow/release", "/api/escrow/cancel"]
      for (const path of paths) {
        for (const key of [payer.key, undefined]) {
          for (const [contentType, raw] of nonJsonBodies) {
            const options = { raw, headers: { "content-type": contentType }, ...(key === undefined ? {} : { key }) }
            expectUnsupported(yield* h.http("POST", path, options), `${path} ${contentType}`)
          }
        }
      }
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      const registered = yield* h.http("POST", "/api/agents", {
        raw: JSON.stringify({ agent_name: "charset" }),
        headers: { "content-type": "application/json; charset=utf-8" }
      })
      expect(registered.status).toBe(201)
      // A non-JSON type is refused even on an empty body (a multipart parser would wait on it forever)...
      for (const [contentType] of nonJsonBodies) {
        const empty = yield* h.http("POST", "/api/mandates", { key: payer.key, raw: "", headers: { "content-type": contentType } })
        expectUnsupported(empty, `empty ${contentType}`)
        expectUnsupported(yield* h.http("POST", "/api/agents/rotate-key", { key: payer.key, headers: { "content-type": contentType } }), `bodiless ${contentType}`)
      }
      // ... and a bodiless POST needs no Content-Type.
      const rotated = yield* h.http("POST", "/api/agents/rotate-key", { key: payer.key })
      expect(rotated.status, JSON.stringify(rotated.body)).toBe(200)
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
    }))
})

describe("timestamps in requests", () => {
  it.scoped("a mandate's expiry beyond what a date can name is 400 naming expires_at; no mandate is created", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const grant = (expires_at: unknown) =>
        h.http("POST", "/api/mandates", { key: payer.key, body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "1", expires_at } })
      for (const expires_at of [8_640_000_000_000.001, 1e300, 253_402_300_800, "+275760-09-13T00:00:00.000Z"]) {
        const reply = yield* grant(expires_at)
        expect(reply.status, `${expires_at}: ${JSON.stringify(reply.body)}`).toBe(400)
        expect(reply.body).toMatchObject({ error: "invalid_request", field: "expires_at" })
      }
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      expect(yield* h.ledger.findLiveMandate(payer.wallet, payee.wallet)).toBeNull()
      // The last second of 9999 is a date, and is served.
      const last = yield* grant(253_402_300_799)
      expect(last.status, JSON.stringify(last.body)).toBe(201)
      expect(last.body.expires_at).toBe("9999-12-31T23:59:59.000Z")
    }))
})

describe("MCP's body bounds", () => {
  it.scopedLive("deep JSON-RPC is 400 naming body, with or without a key; a form is 415; the server keeps serving", () =>
    Effect.gen(function*() {
      const service = yield* startService
      const result = yield* Effect.promise(async () => {
        const alice = await register(service.base, "alice")
        const before = await rest(service.base, "GET", `/api/wallets/${alice.wallet}`, { key: alice.key })
        const post = (raw: string, headers: Record<string, string>) =>
          fetch(service.base + "/mcp", {
            method: "POST",
            headers: { accept: "application/json, text/event-stream", ...headers },
            body: raw
          }).then(async (r) => ({ status: r.status, body: await r.json(), headers: r.headers }))
        const call = (args: string) =>
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"claim_faucet","arguments":${args}}}`
        const replies: Array<[string, Reply]> = []
        for (const auth of [{ authorization: `Bearer ${alice.key}` }, {}]) {
          const json = { "content-type": "application/json", ...auth }
          replies.push(["arrays", await post(call(`{"wallet_address":${nestedArrays(5_000)}}`), json)])
          replies.push(["objects", await post(call(nestedObjects(5_000)), json)])
          replies.push(["batch", await post("[" + call(nestedArrays(40)) + "]", json)])
        }
        const form = await post("a=1", { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${alice.key}` })
        const after = await rest(service.base, "GET", `/api/wallets/${alice.wallet}`, { key: alice.key })
        const client = await connect(service.base, alice.key)
        const tools = await client.listTools()
        await client.close()
        return { replies, form, before: before.body, after: after.body, tools: tools.tools.length }
      })
      for (const [what, reply] of result.replies) expectTooDeep(reply, what)
      expectUnsupported(result.form, "form")
      expect(result.after).toEqual(result.before)
      expect(result.tools).toBeGreaterThan(0)
    }), { timeout: 60_000 })
})

describe("the orchestrator's own routes' body bounds", () => {
  let embedded: InProcess
  let remote: InProcess
  beforeAll(async () => {
    embedded = await startInProcess({ region: "iad" })
    const orchestrator = await register(embedded.base, "remote-orchestrator")
    remote = await startInProcess({
      region: "nrt",
      settlement: { _tag: "Remote", baseUrl: embedded.base, apiKey: Redacted.make(orchestrator.key), faucetBaseUrl: embedded.base },
      agentWallet: orchestrator.wallet
    })
  }, 60_000)
  afterAll(async () => {
    await remote?.dispose()
    await embedded?.dispose()
  })

  it("/inference and /tasks: deep JSON is 400 naming body, a body that is not JSON 415; embedded and remote; nothing is charged", async () => {
    const payer = await register(embedded.base, "payer")
    const escrowsBefore = (await Effect.runPromise(embedded.ledger!.verify)).escrows
    for (const svc of [embedded, remote]) {
      for (const path of ["/inference", "/tasks/summarize"]) {
        for (const nested of [nestedArrays(5_000), nestedObjects(5_000), nestedArrays(MAX_JSON_DEPTH)]) {
          const raw = withNesting({ payer_wallet: payer.wallet, prompt: "hi", input: "hi" }, nested)
          expectTooDeep(await request(svc.base, "POST", path, { raw }), `${svc.config.region} ${path}`)
        }
        for (const [contentType, raw] of nonJsonBodies) {
          expectUnsupported(await request(svc.base, "POST", path, { raw, headers: { "content-type": contentType } }), `${svc.config.region} ${path} ${contentType}`)
        }
      }
      // At the limit, the body is read and judged on its content (here: no payment credential).
      const atLimit = await request(svc.base, "POST", "/inference", {
        raw: withNesting({ payer_wallet: payer.wallet, prompt: "hi" }, nestedArrays(MAX_JSON_DEPTH - 1))
      })
      expect(atLimit.status, JSON.stringify(atLimit.body)).toBe(402)
    }
    const report = await Effect.runPromise(embedded.ledger!.verify)
    expect(report.escrows).toBe(escrowsBefore)
    expect(report.violations).toEqual([])
  }, 60_000)
})
