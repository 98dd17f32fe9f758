/**
 * The "Remote agents" guide of docs/orchestrator.md, run as written: a settlement
 * server on a loopback port, then the guide's two programs (examples/remote/) as
 * two child processes, each starting from an empty directory, with nothing but the
 * settlement service's URL and the agent service's. Balances are read from the
 * settlement server's ledger.
 */
import { describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Duration, Effect, Layer } from "effect"
import type { WalletAddress } from "../../src/domain/ids.js"
import * as Server from "../../src/http/server.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { feeOf, tempDir, u } from "./support.js"

const repo = path.resolve(import.meta.dirname, "../..")
const tsxCli = path.join(repo, "node_modules", "tsx", "dist", "cli.mjs")
const example = (name: string) => path.join(repo, "examples", "remote", name)

/** Runs an example with tsx from `cwd` (its ./data lands there), resolving "ringmaster" through the repository's tsconfig. */
const start = (file: string, cwd: string, env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, [tsxCli, "--tsconfig", path.join(repo, "tsconfig.json"), file], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

const collect = (child: ChildProcess) => {
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  return () => output
}

/** The agent service, until the scope closes: resolves with the address it logs once listening. */
const agentService = (cwd: string, settlementUrl: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = start(example("agent-service.ts"), cwd, { SETTLEMENT_URL: settlementUrl, PORT: "0" })
      return { child, output: collect(child) }
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
      })
  ).pipe(
    Effect.flatMap(({ child, output }) =>
      Effect.async<string, Error>((resume) => {
        const poll = setInterval(() => {
          const listening = /Listening on (http:\/\/[\d.]+:\d+)/.exec(output())
          if (listening !== null) {
            clearInterval(poll)
            resume(Effect.succeed(listening[1]!))
          } else if (child.exitCode !== null) {
            clearInterval(poll)
            resume(Effect.fail(new Error(`agent-service.ts exited with ${child.exitCode}:\n${output()}`)))
          }
        }, 50)
        return Effect.sync(() => clearInterval(poll))
      })
    ),
    Effect.timeoutFail({ duration: Duration.seconds(60), onTimeout: () => new Error("agent-service.ts did not start listening") })
  )

/** Runs hire.ts to its end; its output. */
const hire = (cwd: string, env: Record<string, string>) =>
  Effect.async<string, Error>((resume) => {
    const child = start(example("hire.ts"), cwd, env)
    const output = collect(child)
    child.once("exit", (code) =>
      resume(code === 0 ? Effect.succeed(output()) : Effect.fail(new Error(`hire.ts exited with ${code}:\n${output()}`))))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const walletIn = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")).wallet_address as WalletAddress

describe("docs/orchestrator.md, Remote agents: two processes and a settlement service", () => {
  it.scopedLive("from zero to a paid remote call, then again with the identities each process kept", () =>
    Effect.gen(function*() {
      const settlement = yield* Layer.build(Server.layerMemory({ settlement: { port: 0, host: "127.0.0.1" } }))
      const settlementUrl = yield* Effect.provide(Server.baseUrl, settlement)
      const ledger = Context.get(settlement, Ledger)
      const serviceDir = yield* tempDir("ringmaster-agent-service-")
      const orchestratorDir = yield* tempDir("ringmaster-orchestrator-")

      const agentUrl = yield* agentService(serviceDir, settlementUrl)
      const service = walletIn(path.join(serviceDir, "data", "translator-service.json"))
      const env = { SETTLEMENT_URL: settlementUrl, AGENT_URL: agentUrl }

      const first = yield* hire(orchestratorDir, env)
      expect(first).toContain("translated: arrives that work for pays escrow")
      const orchestrator = walletIn(path.join(orchestratorDir, "data", "orchestrator.json"))
      expect(first).toContain(`paid ${service} for it; ${orchestrator} holds 0.750000 USDC`)
      const price = u("0.25")
      // Each claimed the faucet's 1 USDC at its first start; the translator nets the price less the 1% fee.
      expect((yield* ledger.balance(orchestrator)).available).toBe(u("1") - price)
      expect((yield* ledger.balance(service)).available).toBe(u("1") + price - feeOf(price))

      // The second run reads ./data/orchestrator.json: the same wallet, not funded again.
      const second = yield* hire(orchestratorDir, env)
      expect(second).toContain(`${orchestrator} holds 0.500000 USDC`)
      expect(yield* ledger.balance(orchestrator)).toMatchObject({ available: u("1") - 2n * price, locked: 0n })
      expect((yield* ledger.balance(service)).available).toBe(u("1") + 2n * (price - feeOf(price)))
      expect((yield* ledger.listEscrows({ wallet: orchestrator })).escrows.map((e) => e.status)).toEqual(["released", "released"])
      expect((yield* ledger.verify).violations).toEqual([])
    }), 120_000)
})
