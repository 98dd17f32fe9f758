/**
 * `ringmaster mcp`: the tools on stdio, spawned as a real process by the official SDK's
 * `StdioClientTransport`, over the same SQLite file the test set up and reads back.
 * The key comes from `PF_API_KEY`, since stdio has no headers. One process only: its
 * start (loading the module graph through tsx) is most of this test's time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { sqliteStores } from "../../src/cli/services.js"
import type { WalletAddress } from "../../src/domain/ids.js"
import { Settlement } from "../../src/settlement/Settlement.js"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerSettings from "../../src/ledger/LedgerConfig.js"
import { call, tempDir } from "./harness.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** The settlement operations on the SQLite file in `dataDir`, in this process, for one effect. */
const withStores = <A, E>(dataDir: string, effect: Effect.Effect<A, E, Settlement | Ledger>) =>
  effect.pipe(
    Effect.provide(
      Settlement.layer.pipe(
        Layer.provideMerge(sqliteStores(dataDir)),
        Layer.provide(LedgerSettings.layer()),
        Layer.provide(SettlementSettings.layer())
      )
    )
  )

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const spawnMcp = async (env: Record<string, string>): Promise<{ client: Client; pid: number }> => {
  const client = new Client({ name: "ringmaster-stdio-test", version: "1.0.0" })
  const transport = new StdioClientTransport({
    // `node --import tsx` is what `npx tsx` ends up running, minus two wrapper processes
    // that would outlive a SIGKILL; the published bin is `node dist/cli/main.js`.
    command: process.execPath,
    args: ["--import", "tsx", "src/cli/main.ts", "mcp"],
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
    stderr: "pipe"
  })
  await client.connect(transport)
  return { client, pid: transport.pid! }
}

describe("ringmaster mcp (stdio)", () => {
  it.live("lists the tools and calls them as the owner of PF_API_KEY, on the shared SQLite ledger", () =>
    Effect.gen(function*() {
      const dataDir = tempDir("ringmaster-mcp-stdio-")
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))

      const { alice, bob, key } = yield* withStores(
        dataDir,
        Effect.gen(function*() {
          const settlement = yield* Settlement
          const ledger = yield* Ledger
          const alice = yield* settlement.registerAgent({ name: "alice" })
          const bob = yield* settlement.registerAgent({ name: "bob" })
          yield* ledger.claimFaucet({ wallet: alice.agent.wallet, agentName: "alice" })
          return { alice: alice.agent.wallet, bob: bob.agent.wallet, key: Redacted.value(alice.apiKey) }
        })
      )

      const escrowId = yield* Effect.promise(async () => {
        const { client, pid } = await spawnMcp({ DATA_DIR: dataDir, PF_API_KEY: key })
        try {
          const { tools } = await client.listTools()
          expect(tools.map((t) => t.name).sort()).toEqual(
            ["cancel_escrow", "claim_faucet", "create_escrow", "create_payment_token", "get_balance", "get_escrow", "referral_stats", "release_escrow", "whoami"]
          )
          const balance = await call(client, "get_balance", { wallet_address: alice })
          expect(balance).toEqual({
            isError: false,
            structured: { wallet_address: alice, balance_usdc: "1.000000", locked_usdc: "0.000000" },
            text: { wallet_address: alice, balance_usdc: "1.000000", locked_usdc: "0.000000" }
          })
          // `arguments` left out, as MCP allows for a tool that takes none.
          const stats: any = await client.callTool({ name: "referral_stats" })
          expect(stats).toMatchObject({ isError: false, structuredContent: { earned_usdc: "0.000000", referred_agents: [] } })
          const notMine = await call(client, "get_balance", { wallet_address: bob })
          expect(notMine.structured).toMatchObject({ error: "forbidden" })
          const created = await call(client, "create_escrow", {
            payer_wallet: alice,
            payee_wallet: bob,
            amount_usdc: 0.3,
            description: "over stdio"
          })
          expect(created.structured).toMatchObject({ status: "pending", amount_usdc: "0.300000", fee_usdc: "0.003000" })
          return created.structured.escrow_id as string
        } finally {
          await client.close()
          // Closing stdin ends the session: the server exits by itself, well before the
          // SDK's SIGTERM (2 s) would. Polled with a bound.
          for (let i = 0; i < 50 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 100))
          expect(isRunning(pid)).toBe(false)
        }
      })

      // What the child process did is in the file: exact balances read back here.
      const after = yield* withStores(
        dataDir,
        Effect.flatMap(Ledger, (ledger) =>
          Effect.all([ledger.balance(alice as WalletAddress), ledger.balance(bob as WalletAddress), ledger.getEscrow(escrowId as any)]))
      )
      expect(after[0]).toMatchObject({ available: 700_000n, locked: 300_000n })
      expect(after[1]).toMatchObject({ available: 0n, locked: 0n })
      expect(after[2].status).toBe("pending")
    }).pipe(Effect.scoped), { timeout: 150_000 })
})
