/**
 * The MCP tools over StreamableHTTP at `POST /mcp`, on the same server and port as the
 * REST API (SQLite ledger), driven by the official `@modelcontextprotocol/sdk` client.
 * Every result is compared with the REST route's JSON and every balance is exact.
 */
import { describe, expect, it } from "@effect/vitest"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { call, connect, register, rest, startService } from "./harness.js"

const TOOLS = {
  create_escrow: ["payer_wallet", "payee_wallet", "amount_usdc", "description"],
  create_payment_token: ["payee_wallet", "max_amount_usdc", "expires_in_seconds", "mandate_id"],
  release_escrow: ["escrow_id"],
  cancel_escrow: ["escrow_id"],
  get_escrow: ["escrow_id"],
  claim_faucet: ["wallet_address", "agent_name"],
  get_balance: ["wallet_address"],
  referral_stats: [],
  whoami: []
} as const

/** Arguments a tool may be called without. */
const OPTIONAL: Record<string, ReadonlyArray<string>> = { create_payment_token: ["expires_in_seconds", "mandate_id"] }

describe("MCP over StreamableHTTP", () => {
  it.scopedLive("initialize, list tools, call each tool with exact balances; results equal the REST records", () =>
    Effect.gen(function*() {
      const { base } = yield* startService
      yield* Effect.promise(async () => {
        const alice = await register(base, "alice")
        const bob = await register(base, "bob", alice.referralCode)
        const carol = await register(base, "carol")
        const asAlice = await connect(base, alice.key)
        const asBob = await connect(base, bob.key)
        const asCarol = await connect(base, carol.key)
        const balanceOf = async (agent: typeof alice) =>
          (await rest(base, "GET", `/api/wallets/${agent.wallet}`, { key: agent.key })).body

        // initialize
        expect(asAlice.getServerVersion()?.name).toBe("ringmaster-settlement")
        expect(asAlice.getServerCapabilities()?.tools).toBeDefined()

        // tools/list: the nine tools, each with exactly its documented arguments
        const { tools } = await asAlice.listTools()
        expect(tools.map((t) => t.name).sort()).toEqual(Object.keys(TOOLS).sort())
        for (const tool of tools) {
          const expected = TOOLS[tool.name as keyof typeof TOOLS]
          expect(tool.inputSchema.type).toBe("object")
          expect(Object.keys(tool.inputSchema.properties ?? {}).sort()).toEqual([...expected].sort())
          const optional = OPTIONAL[tool.name] ?? []
          expect([...((tool.inputSchema as any).required ?? [])].sort()).toEqual(expected.filter((a) => !optional.includes(a)).sort())
          expect(tool.description?.length ?? 0).toBeGreaterThan(10)
        }
        const create = tools.find((t) => t.name === "create_escrow")!.inputSchema as any
        expect(create.properties.amount_usdc.anyOf.map((s: any) => s.type).sort()).toEqual(["number", "string"])
        expect(create.properties.payer_wallet).toMatchObject({ type: "string", pattern: "^0x[0-9a-fA-F]{40}$" })
        expect(tools.find((t) => t.name === "get_balance")!.annotations).toMatchObject({ readOnlyHint: true })

        // claim_faucet: 1 USDC, once
        const claimed = await call(asAlice, "claim_faucet", { wallet_address: alice.wallet, agent_name: "alice" })
        expect(claimed).toEqual({
          isError: false,
          structured: { credited_usdc: "1.000000", balance_usdc: "1.000000" },
          text: { credited_usdc: "1.000000", balance_usdc: "1.000000" }
        })
        const again = await call(asAlice, "claim_faucet", { wallet_address: alice.wallet, agent_name: "alice" })
        expect(again.isError).toBe(true)
        expect(again.structured).toMatchObject({ error: "faucet_already_claimed", field: "wallet_address" })

        // get_balance equals the REST wallet record
        const balance = await call(asAlice, "get_balance", { wallet_address: alice.wallet })
        expect(balance.structured).toEqual({ wallet_address: alice.wallet, balance_usdc: "1.000000", locked_usdc: "0.000000" })
        expect(balance.structured).toEqual(await balanceOf(alice))
        expect(balance.text).toEqual(balance.structured)

        // create_escrow with a float amount, as the hosted dialect's clients send it
        const created = await call(asAlice, "create_escrow", {
          payer_wallet: alice.wallet,
          payee_wallet: bob.wallet,
          amount_usdc: 0.5,
          description: "summarize a paper"
        })
        expect(created.isError).toBe(false)
        expect(created.structured).toMatchObject({
          status: "pending",
          payer_wallet: alice.wallet,
          payee_wallet: bob.wallet,
          amount_usdc: "0.500000",
          fee_usdc: "0.005000",
          net_usdc: "0.495000",
          remaining_usdc: "0.500000",
          description: "summarize a paper"
        })
        expect(created.text).toEqual(created.structured)
        const escrowId: string = created.structured.escrow_id
        expect(await balanceOf(alice)).toMatchObject({ balance_usdc: "0.500000", locked_usdc: "0.500000" })

        // get_escrow: the very record REST returns, for both parties; a stranger is refused
        const viaRest = await rest(base, "GET", `/api/escrow/${escrowId}`, { key: alice.key })
        expect((await call(asAlice, "get_escrow", { escrow_id: escrowId })).structured).toEqual(viaRest.body)
        expect((await call(asBob, "get_escrow", { escrow_id: escrowId })).structured).toEqual(viaRest.body)
        const stranger = await call(asCarol, "get_escrow", { escrow_id: escrowId })
        expect(stranger).toMatchObject({ isError: true, structured: { error: "forbidden", field: "escrow_id" } })

        // release_escrow: only the payer here (no mandate); the payee gets 99%, the referrer 15% of the fee
        const byPayee = await call(asBob, "release_escrow", { escrow_id: escrowId })
        expect(byPayee.structured).toMatchObject({ error: "forbidden" })
        const released = await call(asAlice, "release_escrow", { escrow_id: escrowId })
        expect(released.structured).toMatchObject({
          status: "released",
          released_usdc: "0.500000",
          fee_paid_usdc: "0.005000",
          remaining_usdc: "0.000000"
        })
        expect(released.structured).toEqual((await rest(base, "GET", `/api/escrow/${escrowId}`, { key: bob.key })).body)
        expect(await balanceOf(bob)).toMatchObject({ balance_usdc: "0.495000", locked_usdc: "0.000000" })
        expect(await balanceOf(alice)).toMatchObject({ balance_usdc: "0.500750", locked_usdc: "0.000000" })

        // cancel_escrow: amount as a decimal string; the payer may not cancel before the deadline, the payee may
        const second = await call(asAlice, "create_escrow", {
          payer_wallet: alice.wallet,
          payee_wallet: bob.wallet,
          amount_usdc: "0.25",
          description: "a task that will fail"
        })
        expect(second.structured).toMatchObject({ status: "pending", amount_usdc: "0.250000" })
        expect(await balanceOf(alice)).toMatchObject({ balance_usdc: "0.250750", locked_usdc: "0.250000" })
        const early = await call(asAlice, "cancel_escrow", { escrow_id: second.structured.escrow_id })
        expect(early.structured).toMatchObject({ error: "forbidden", field: "escrow_id" })
        expect(await balanceOf(alice)).toMatchObject({ balance_usdc: "0.250750", locked_usdc: "0.250000" })
        const cancelled = await call(asBob, "cancel_escrow", { escrow_id: second.structured.escrow_id })
        expect(cancelled.structured).toMatchObject({ status: "cancelled", refunded_usdc: "0.250000", remaining_usdc: "0.000000" })
        expect(await balanceOf(alice)).toMatchObject({ balance_usdc: "0.500750", locked_usdc: "0.000000" })
        expect(await balanceOf(bob)).toMatchObject({ balance_usdc: "0.495000", locked_usdc: "0.000000" })

        // whoami equals GET /api/agents/me: each key names its own agent
        const aliceIs = await call(asAlice, "whoami")
        expect(aliceIs.structured).toMatchObject({ agent_name: "alice", wallet_address: alice.wallet, referral_code: alice.referralCode, referrer_wallet: null })
        expect(aliceIs.structured).toEqual((await rest(base, "GET", "/api/agents/me", { key: alice.key })).body)
        expect((await call(asBob, "whoami")).structured).toMatchObject({ wallet_address: bob.wallet, referrer_wallet: alice.wallet })

        // referral_stats equals GET /api/referrals
        const stats = await call(asAlice, "referral_stats")
        expect(stats.structured).toMatchObject({
          referral_code: alice.referralCode,
          earned_usdc: "0.000750",
          referred_agents: [{ agent_id: bob.id, agent_name: "bob", wallet_address: bob.wallet, earned_usdc: "0.000750" }]
        })
        expect(stats.structured).toEqual((await rest(base, "GET", "/api/referrals", { key: alice.key })).body)
        expect(stats.text).toEqual(stats.structured)

        // Concurrent calls under different keys: each is its caller's (a crossed key would be "forbidden").
        const clients = [[alice, asAlice], [bob, asBob], [carol, asCarol]] as const
        const replies = await Promise.all(
          Array.from({ length: 60 }, (_, i) => {
            const [agent, client] = clients[i % 3]!
            return call(client, "get_balance", { wallet_address: agent.wallet }).then((reply) => [agent, reply] as const)
          })
        )
        for (const [agent, reply] of replies) {
          expect(reply.isError).toBe(false)
          expect(reply.structured).toEqual(await balanceOf(agent))
        }

        await Promise.all([asAlice.close(), asBob.close(), asCarol.close()])
      })
    }), { timeout: 60_000 })

  it.scopedLive("bad arguments, refusals and missing keys are MCP tool errors; nothing changes and the server keeps serving", () =>
    Effect.gen(function*() {
      const { base } = yield* startService
      yield* Effect.promise(async () => {
        const alice = await register(base, "alice")
        const bob = await register(base, "bob")
        const asAlice = await connect(base, alice.key)
        await call(asAlice, "claim_faucet", { wallet_address: alice.wallet, agent_name: "alice" })
        const unchanged = { wallet_address: alice.wallet, balance_usdc: "1.000000", locked_usdc: "0.000000" }
        const aliceBalance = async () => (await rest(base, "GET", `/api/wallets/${alice.wallet}`, { key: alice.key })).body
        const escrow = (amount: unknown) => ({
          payer_wallet: alice.wallet,
          payee_wallet: bob.wallet,
          amount_usdc: amount,
          description: "x"
        })

        // Bad arguments: an MCP tool error naming the argument as REST's 400 does, the text content carrying the same body.
        const cases: ReadonlyArray<[string, Record<string, unknown>, string]> = [
          ["create_escrow", escrow("1.0000001"), "amount_usdc"],
          ["create_escrow", escrow(0.0000015), "amount_usdc"],
          ["create_escrow", escrow(0), "amount_usdc"],
          ["create_escrow", escrow("-1"), "amount_usdc"],
          ["create_escrow", escrow("lots"), "amount_usdc"],
          ["create_escrow", { payer_wallet: alice.wallet, payee_wallet: bob.wallet, amount_usdc: 1 }, "description"],
          ["create_escrow", { ...escrow(1), description: "d".repeat(2001) }, "description"],
          ["get_balance", { wallet_address: "0x123" }, "wallet_address"],
          ["get_balance", { wallet_address: 42 }, "wallet_address"],
          ["get_escrow", { escrow_id: "nope" }, "escrow_id"],
          ["claim_faucet", { wallet_address: alice.wallet, agent_name: "" }, "agent_name"]
        ]
        for (const [tool, args, field] of cases) {
          const reply = await call(asAlice, tool, args)
          expect(reply.isError, `${tool} ${JSON.stringify(args)}`).toBe(true)
          expect(reply.structured).toMatchObject({ error: "invalid_request", field })
          expect(reply.structured.message).toMatch(new RegExp(`^${field}: .+`))
          expect(reply.text).toEqual(reply.structured)
        }
        // ... the same body REST answers the same arguments with (400).
        for (const amount of ["1.0000001", 0]) {
          const viaRest = await rest(base, "POST", "/api/escrow/create", { key: alice.key, body: escrow(amount) })
          expect(viaRest.status).toBe(400)
          expect((await call(asAlice, "create_escrow", escrow(amount))).structured).toEqual(viaRest.body)
        }
        expect(await aliceBalance()).toEqual(unchanged)

        // Refusals from the settlement rules: the REST error codes, balances unchanged.
        const poor = await call(asAlice, "create_escrow", escrow("2"))
        expect(poor).toMatchObject({
          isError: true,
          structured: { error: "insufficient_funds", details: { required_usdc: "2.000000", available_usdc: "1.000000" } }
        })
        const notMine = await call(asAlice, "get_balance", { wallet_address: bob.wallet })
        expect(notMine.structured).toMatchObject({ error: "forbidden", field: "wallet_address" })
        const missing = await call(asAlice, "get_escrow", { escrow_id: "esc_0000000000000000000000000000" })
        expect(missing.structured).toMatchObject({ error: "escrow_not_found" })
        expect(await aliceBalance()).toEqual(unchanged)

        // No key, or a wrong one: initialize and tools/list work, every tool call is refused as 401 would be.
        const anonymous = await connect(base)
        expect((await anonymous.listTools()).tools).toHaveLength(Object.keys(TOOLS).length)
        expect(await call(anonymous, "whoami")).toMatchObject({ isError: true, structured: { error: "unauthorized" } })
        const noKey = await call(anonymous, "get_balance", { wallet_address: alice.wallet })
        expect(noKey).toMatchObject({ isError: true, structured: { error: "unauthorized" } })
        const wrongKey = await connect(base, "pk_" + "A".repeat(43))
        const denied = await call(wrongKey, "create_escrow", escrow("0.5"))
        expect(denied).toMatchObject({ isError: true, structured: { error: "unauthorized" } })
        const notBearer = await connect(base, undefined, { authorization: `Basic ${alice.key}` })
        expect((await call(notBearer, "get_balance", { wallet_address: alice.wallet })).structured.error).toBe("unauthorized")
        expect(await aliceBalance()).toEqual(unchanged)
        // Like REST, only the bearer scheme: a key in another header is no key.
        const viaOtherHeader = await connect(base, undefined, { "x-api-key": alice.key })
        expect((await call(viaOtherHeader, "get_balance", { wallet_address: alice.wallet })).structured.error).toBe("unauthorized")
        await viaOtherHeader.close()

        // An API key as a tool argument authorizes nothing: refused, not echoed back.
        for (const name of ["api_key", "apiKey", "authorization", "token"]) {
          const smuggled = await call(anonymous, "get_balance", { wallet_address: alice.wallet, [name]: alice.key })
          expect(smuggled.isError).toBe(true)
          expect(smuggled.structured).toMatchObject({ error: "invalid_request", field: name })
          expect(smuggled.structured.message).toContain("Authorization")
          expect(JSON.stringify(smuggled)).not.toContain(alice.key)
        }
        const asBob = await connect(base, bob.key)
        const hijack = await call(asBob, "create_escrow", { ...escrow("0.5"), api_key: alice.key })
        expect(hijack).toMatchObject({ isError: true, structured: { error: "invalid_request", field: "api_key" } })
        expect(await aliceBalance()).toEqual(unchanged)

        // An unknown tool is a JSON-RPC invalid-params error, not a crash.
        const unknown = await asAlice.callTool({ name: "drain_wallet", arguments: {} }).then(
          () => undefined,
          (error: unknown) => error
        )
        expect(unknown).toBeInstanceOf(McpError)
        expect((unknown as McpError).code).toBe(-32602)

        // Garbage at the transport: JSON-RPC errors with their standard codes, a 413, a 405; the server unharmed.
        const post = (body: string, headers: Record<string, string> = {}) =>
          fetch(base + "/mcp", {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
            body
          })
        const garbage = await post("{not json")
        expect(garbage.status).toBe(400)
        expect(await garbage.json()).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } })
        const wrongShape = await post(
          JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "get_balance", arguments: "alice" } }),
          { authorization: `Bearer ${alice.key}` }
        )
        expect(await wrongShape.json()).toEqual({ jsonrpc: "2.0", id: 7, error: { code: -32602, message: expect.any(String) } })
        const noName = await post(JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/call", params: {} }))
        expect(await noName.json()).toMatchObject({ id: 8, error: { code: -32602 } })
        const huge = await post(
          JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "tools/call",
            params: { name: "create_escrow", arguments: { ...escrow("0.5"), description: "x".repeat(100_000) } }
          }),
          { authorization: `Bearer ${alice.key}` }
        )
        expect(huge.status).toBe(413)
        const notification = await post(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }))
        expect(notification.status).toBe(202)
        expect(await notification.text()).toBe("")
        const sse = await fetch(base + "/mcp", { headers: { accept: "text/event-stream" } })
        expect(sse.status).toBe(405)
        expect(sse.headers.get("allow")).toBe("POST")
        expect(await aliceBalance()).toEqual(unchanged)

        // `arguments` is optional in MCP: a no-argument tool called without it works.
        const bare: any = await asAlice.callTool({ name: "referral_stats" })
        expect(bare.isError).toBe(false)
        expect(bare.structuredContent).toMatchObject({ referral_code: alice.referralCode, earned_usdc: "0.000000" })

        // Still serving: the same client, a good call.
        const fine = await call(asAlice, "create_escrow", escrow(0.5))
        expect(fine.structured).toMatchObject({ status: "pending", amount_usdc: "0.500000" })
        expect(await aliceBalance()).toEqual({ ...unchanged, balance_usdc: "0.500000", locked_usdc: "0.500000" })

        await Promise.all([asAlice.close(), asBob.close(), anonymous.close(), wrongKey.close(), notBearer.close()])
      })
    }), { timeout: 60_000 })
})
