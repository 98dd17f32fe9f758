/** The MCP body check in front of @effect/ai's server: standard JSON-RPC errors, optional `arguments`. */
import { describe, expect, it } from "@effect/vitest"
import { inspect, MAX_BATCH_MESSAGES, normalizeLine } from "../../src/http/mcp/jsonRpc.js"

const call = (id: number, params: unknown) => ({ jsonrpc: "2.0", id, method: "tools/call", params })

describe("MCP JSON-RPC body inspection", () => {
  it("answers unparseable JSON with a parse error and no id", () => {
    expect(inspect("{oops")).toEqual({
      _tag: "Answer",
      status: 400,
      body: { jsonrpc: "2.0", id: null, error: { code: -32700, message: expect.any(String) } }
    })
  })

  it("answers tools/call with a missing name or non-object arguments with invalid params", () => {
    for (const params of [undefined, {}, { name: 3 }, { name: "get_balance", arguments: "x" }, { name: "get_balance", arguments: [1] }]) {
      const result = inspect(JSON.stringify(call(5, params)))
      expect(result).toMatchObject({ _tag: "Answer", status: 200, body: { id: 5, error: { code: -32602 } } })
    }
  })

  it("rejects non-JSON-RPC values, empty and oversized batches", () => {
    expect(inspect("42")).toMatchObject({ _tag: "Answer", body: { error: { code: -32600 } } })
    expect(inspect("[]")).toMatchObject({ _tag: "Answer", status: 400, body: { error: { code: -32600 } } })
    const many = Array.from({ length: MAX_BATCH_MESSAGES + 1 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "ping" }))
    expect(inspect(JSON.stringify(many))).toMatchObject({ _tag: "Answer", status: 400 })
  })

  it("answers a batch holding a bad call as a whole, one error per request", () => {
    const result = inspect(JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "ping" },
      call(2, { name: "x", arguments: 1 }),
      { jsonrpc: "2.0", method: "notifications/initialized" }
    ]))
    expect(result).toMatchObject({
      _tag: "Answer",
      body: [{ id: 1, error: { code: -32600 } }, { id: 2, error: { code: -32602 } }]
    })
  })

  it("fills in the optional arguments of tools/call and leaves other bodies untouched", () => {
    const result = inspect(JSON.stringify(call(1, { name: "referral_stats" })))
    expect(result).toMatchObject({ _tag: "Forward", hasRequests: true })
    expect(JSON.parse((result as any).body)).toEqual(call(1, { name: "referral_stats", arguments: {} }))
    expect(inspect(JSON.stringify(call(1, { name: "get_balance", arguments: { wallet_address: "0x" } })))).toEqual({
      _tag: "Forward",
      body: undefined,
      hasRequests: true
    })
  })

  it("knows a body of notifications and responses has no requests (202)", () => {
    expect(inspect(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }))).toEqual({
      _tag: "Forward",
      body: undefined,
      hasRequests: false
    })
    expect(inspect(JSON.stringify({ jsonrpc: "2.0", id: 3, result: {} }))).toMatchObject({ hasRequests: false })
  })

  it("normalizes stdio lines: arguments filled in, anything else as it came", () => {
    expect(JSON.parse(normalizeLine(JSON.stringify(call(1, { name: "referral_stats" }))))).toEqual(
      call(1, { name: "referral_stats", arguments: {} })
    )
    for (const line of ["", "{oops", JSON.stringify(call(2, { name: "get_balance", arguments: { a: 1 } }))]) {
      expect(normalizeLine(line)).toBe(line)
    }
  })
})
