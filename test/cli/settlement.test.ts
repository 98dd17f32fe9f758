/**
 * `ringmaster settlement` as a real process: it reads PORT/HOST/DATA_DIR, serves the
 * REST API and MCP on the same port, keeps its ledger in DATA_DIR, and stops cleanly
 * on SIGTERM.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

describe("ringmaster settlement", () => {
  it.live("serves REST and MCP on one port with its ledger in DATA_DIR, and exits on SIGTERM", () =>
    Effect.promise(async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-cli-"))
      // PORT must be 1-65535 (Config.port), so ask the OS for a free one first.
      const port = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as net.AddressInfo
          probe.close(() => resolve(port))
        })
      })
      const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "settlement"], {
        cwd: root,
        env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", PORT: String(port), HOST: "127.0.0.1", DATA_DIR: dataDir },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      try {
        // The address is logged once listening; wait for it, bounded.
        let output = ""
        const base = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no "Listening on" within 60 s:\n${output}`)), 60_000)
          const onData = (chunk: Buffer) => {
            output += chunk.toString()
            const match = new RegExp(`Listening on (http://127\\.0\\.0\\.1:${port})`).exec(output)
            if (match !== null) {
              clearTimeout(timer)
              resolve(match[1]!)
            }
          }
          child.stdout.on("data", onData)
          child.stderr.on("data", onData)
          child.once("exit", (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)))
        })

        expect(await (await fetch(base + "/health")).json()).toEqual({ ok: true, region: "local" })
        const registered = await fetch(base + "/api/agents", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ agent_name: "cli-agent" })
        })
        expect(registered.status).toBe(201)
        const agent: any = await registered.json()
        const mcp = await fetch(base + "/mcp", {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            authorization: `Bearer ${agent.api_key}`
          },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "tools/call",
            params: { name: "claim_faucet", arguments: { wallet_address: agent.wallet_address, agent_name: "cli-agent" } }
          })
        })
        expect(await mcp.json()).toMatchObject({
          id: 1,
          result: { isError: false, structuredContent: { credited_usdc: "1.000000", balance_usdc: "1.000000" } }
        })
        expect(fs.existsSync(path.join(dataDir, "ledger.db"))).toBe(true)

        child.kill("SIGTERM")
        const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 15_000))])
        expect(code).not.toBe("timeout")
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL")
        await exited
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }), { timeout: 120_000 })
})
