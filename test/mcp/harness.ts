/**
 * The settlement service as `ringmaster settlement` composes it (REST + `POST /mcp` on
 * one port, SQLite ledger and API keys in a temp dir), on an ephemeral loopback port,
 * plus the official MCP SDK client and a plain fetch for the REST side.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, type Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { settlementHttp, sqliteStores } from "../../src/cli/services.js"
import * as Server from "../../src/http/server.js"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import { Ledger, type LedgerShape } from "../../src/ledger/Ledger.js"
import * as LedgerSettings from "../../src/ledger/LedgerConfig.js"

export interface Service {
  readonly base: string
  readonly dataDir: string
  readonly ledger: LedgerShape
}

export const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Starts the service for the current scope; the data dir is removed with it. */
export const startService: Effect.Effect<Service, unknown, Scope.Scope> = Effect.gen(function*() {
  const dataDir = tempDir("ringmaster-mcp-")
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))
  const context = yield* Layer.build(
    settlementHttp.pipe(
      Layer.provideMerge(sqliteStores(dataDir)),
      Layer.provideMerge(LedgerSettings.layer()),
      Layer.provideMerge(SettlementSettings.layer({ port: 0, host: "127.0.0.1" }))
    )
  )
  const base = yield* Effect.provide(Server.baseUrl, context)
  const ledger = yield* Effect.provide(Ledger, context)
  return { base, dataDir, ledger }
})

export interface Reply {
  readonly status: number
  readonly body: any
}

export const rest = async (
  base: string,
  method: string,
  route: string,
  options: { readonly key?: string; readonly body?: unknown } = {}
): Promise<Reply> => {
  const headers: Record<string, string> = {}
  if (options.key !== undefined) headers["authorization"] = `Bearer ${options.key}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(base + route, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? null : JSON.parse(text) }
}

export interface Agent {
  readonly id: string
  readonly wallet: string
  readonly key: string
  readonly referralCode: string
}

/** Registers through the REST route, as any agent would. */
export const register = async (base: string, name: string, referralCode?: string): Promise<Agent> => {
  const reply = await rest(base, "POST", "/api/agents", {
    body: referralCode === undefined ? { agent_name: name } : { agent_name: name, referral_code: referralCode }
  })
  if (reply.status !== 201) throw new Error(`register ${name}: ${reply.status} ${JSON.stringify(reply.body)}`)
  return { id: reply.body.agent_id, wallet: reply.body.wallet_address, key: reply.body.api_key, referralCode: reply.body.referral_code }
}

/** An initialized MCP client on `<base>/mcp`, sending `Authorization: Bearer <key>` when given one. */
export const connect = async (base: string, key?: string, headers: Record<string, string> = {}): Promise<Client> => {
  const client = new Client({ name: "ringmaster-test", version: "1.0.0" })
  const all = key === undefined ? headers : { ...headers, authorization: `Bearer ${key}` }
  await client.connect(new StreamableHTTPClientTransport(new URL(base + "/mcp"), { requestInit: { headers: all } }))
  return client
}

/** A tool call's result with the parts tests look at. */
export interface ToolReply {
  readonly isError: boolean
  readonly structured: any
  /** The first text content, parsed as JSON. */
  readonly text: any
}

export const call = async (client: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolReply> => {
  const result: any = await client.callTool({ name, arguments: args })
  const first = result.content?.[0]
  return {
    isError: result.isError === true,
    structured: result.structuredContent,
    text: first?.type === "text" ? JSON.parse(first.text) : undefined
  }
}
