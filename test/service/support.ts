/**
 * Test support for the service: free loopback ports, temp data dirs, a fetch
 * client, an in-process service (ManagedRuntime over `Service.layer`), and real
 * child processes of `src/service/main.ts` (or another entry) with their output
 * captured.
 */
import { HttpServer } from "@effect/platform"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import type { WalletAddress } from "../../src/domain/ids.js"
import { http, type Reply, type RequestOptions } from "../http/harness.js"
import { Ledger, type LedgerShape } from "../../src/ledger/Ledger.js"
import * as Service from "../../src/service/Service.js"
import * as ServiceSettings from "../../src/service/ServiceConfig.js"
import type { ServiceConfigShape } from "../../src/service/ServiceConfig.js"
import { freePort } from "../../scripts/freePort.js"

export const repoRoot = path.resolve(import.meta.dirname, "../..")

export { freePort }

export const tempDir = (prefix = "ringmaster-service-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

export type { Reply }

/** One JSON request (the HTTP suites' helper), as a promise for the process tests. */
export const request = (base: string, method: string, urlPath: string, options: RequestOptions = {}): Promise<Reply> =>
  Effect.runPromise(http(base)(method, urlPath, options))

/** Polls `check` until it returns a value, at most `timeoutMs`. */
export const eventually = async <A>(check: () => Promise<A | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ""}`)
}

/** A registered agent on the embedded settlement API. */
export interface Agent {
  readonly wallet: WalletAddress
  readonly key: string
  readonly referralCode: string
  readonly agentId: string
}

export const register = async (base: string, name: string, referralCode?: string): Promise<Agent> => {
  const reply = await request(base, "POST", "/api/agents", {
    body: referralCode === undefined ? { agent_name: name } : { agent_name: name, referral_code: referralCode }
  })
  if (reply.status !== 201) throw new Error(`register ${name}: ${reply.status} ${JSON.stringify(reply.body)}`)
  return { wallet: reply.body.wallet_address, key: reply.body.api_key, referralCode: reply.body.referral_code, agentId: reply.body.agent_id }
}

/** Registers a payer (referred by `referralCode`), claims its faucet, and grants the orchestrator a mandate. */
export const payerWithMandate = async (
  base: string,
  orchestrator: string,
  options: { readonly referralCode?: string; readonly maxAmount?: string; readonly budget?: string; readonly faucet?: boolean } = {}
) => {
  const payer = await register(base, "payer", options.referralCode)
  if (options.faucet !== false) {
    const claim = await request(base, "POST", "/api/faucet/claim", { key: payer.key, body: { wallet_address: payer.wallet, agent_name: "payer" } })
    if (claim.status !== 200) throw new Error(`faucet: ${claim.status} ${JSON.stringify(claim.body)}`)
  }
  const mandate = await request(base, "POST", "/api/mandates", {
    key: payer.key,
    body: { payee_wallet: orchestrator, max_amount_usdc: options.maxAmount ?? "0.5", budget_usdc: options.budget ?? "1" }
  })
  if (mandate.status !== 201) throw new Error(`mandate: ${mandate.status} ${JSON.stringify(mandate.body)}`)
  return { ...payer, mandateId: mandate.body.mandate_id as string }
}

/** Registers a payer and claims its faucet (1 USDC). */
export const fundedPayer = async (base: string, name = "payer", referralCode?: string): Promise<Agent> => {
  const payer = await register(base, name, referralCode)
  const claim = await request(base, "POST", "/api/faucet/claim", { key: payer.key, body: { wallet_address: payer.wallet, agent_name: name } })
  if (claim.status !== 200) throw new Error(`faucet: ${claim.status} ${JSON.stringify(claim.body)}`)
  return payer
}

/** Mints a payment token for `payee` on the settlement service at `settlementBase`, with the payer's key. */
export const mintToken = async (
  settlementBase: string,
  payer: Agent,
  payee: string,
  options: { readonly maxAmount?: string; readonly mandateId?: string; readonly expiresInSeconds?: number } = {}
): Promise<string> => {
  const reply = await request(settlementBase, "POST", "/api/payment-tokens", {
    key: payer.key,
    body: {
      payee_wallet: payee,
      max_amount_usdc: options.maxAmount ?? "0.5",
      ...(options.mandateId === undefined ? {} : { mandate_id: options.mandateId }),
      ...(options.expiresInSeconds === undefined ? {} : { expires_in_seconds: options.expiresInSeconds })
    }
  })
  if (reply.status !== 201) throw new Error(`payment token: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body.payment_token as string
}

/**
 * A paid request as a client makes it: the request, its 402 challenge, a token
 * minted on the settlement service for the challenge's price and payee (or
 * `maxAmount`, under `mandateId`), and the retry with `Authorization: Payment <token>`.
 */
export const paidRequest = async (
  base: string,
  settlementBase: string,
  payer: Agent,
  urlPath: string,
  body: unknown,
  options: { readonly headers?: Record<string, string>; readonly maxAmount?: string; readonly mandateId?: string } = {}
): Promise<Reply> => {
  const challenge = await request(base, "POST", urlPath, { body, headers: options.headers ?? {} })
  if (challenge.status !== 402 || challenge.body.error !== "payment_required") return challenge
  const token = await mintToken(settlementBase, payer, challenge.body.payee_wallet, {
    maxAmount: options.maxAmount ?? challenge.body.price_usdc,
    ...(options.mandateId === undefined ? {} : { mandateId: options.mandateId })
  })
  return request(base, "POST", urlPath, { body, headers: { ...options.headers, authorization: `Payment ${token}` } })
}

/** A wallet's balance through the API (as its owner). */
export const wallet = async (base: string, agent: Agent) => {
  const reply = await request(base, "GET", `/api/wallets/${agent.wallet}`, { key: agent.key })
  if (reply.status !== 200) throw new Error(`wallet: ${reply.status} ${JSON.stringify(reply.body)}`)
  return { available: reply.body.balance_usdc as string, locked: reply.body.locked_usdc as string }
}

// ---------------------------------------------------------------------------
// In process

export interface InProcess {
  readonly base: string
  readonly metricsUrl: string
  readonly dataDir: string
  readonly config: ServiceConfigShape
  readonly runtime: ManagedRuntime.ManagedRuntime<any, unknown>
  /** The embedded ledger (undefined with a remote settlement service). */
  readonly ledger: LedgerShape | undefined
  readonly dispose: () => Promise<void>
}

export const startInProcess = async (
  overrides: Partial<ServiceConfigShape> = {},
  options: Service.ServiceOptions = {}
): Promise<InProcess> => {
  const dataDir = overrides.dataDir ?? tempDir()
  const metricsPort = overrides.metricsPort ?? (await freePort())
  const config = ServiceSettings.make({ port: 0, host: "127.0.0.1", metricsPort, dataDir, shutdownTimeoutMs: 5_000, ...overrides })
  const layer = Service.layer(options).pipe(Layer.provide(Layer.succeed(ServiceSettings.ServiceConfig, config)))
  const runtime = ManagedRuntime.make(layer)
  const { port, ledger } = await runtime.runPromise(
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const address = server.address
      if (address._tag !== "TcpAddress") throw new Error("not TCP")
      const ledger = yield* Effect.serviceOption(Ledger)
      return { port: address.port, ledger: Option.getOrUndefined(ledger) }
    })
  )
  return {
    base: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    dataDir,
    config,
    runtime: runtime as ManagedRuntime.ManagedRuntime<any, unknown>,
    ledger,
    dispose: () => runtime.dispose()
  }
}

/** One sample of a Prometheus text exposition, by metric name and labels. */
export const metricValue = (text: string, name: string, labels: Record<string, string> = {}): number => {
  let total = 0
  let found = false
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line.startsWith(name)) continue
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line)
    if (match === null || match[1] !== name) continue
    const lineLabels = Object.fromEntries(
      [...(match[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]])
    )
    if (Object.entries(labels).every(([k, v]) => lineLabels[k] === v)) {
      total += Number(match[4])
      found = true
    }
  }
  return found ? total : 0
}

// ---------------------------------------------------------------------------
// Child processes

export interface Child {
  readonly process: ChildProcess
  readonly output: () => string
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Spawns `node --import tsx <entry>` (or `command`) with `env` on top of a clean environment. */
export const spawnService = (options: {
  readonly env: Record<string, string>
  readonly entry?: string
  readonly command?: ReadonlyArray<string>
  readonly cwd?: string
}): Child => {
  const command = options.command ?? ["node", "--import", "tsx", options.entry ?? path.join(repoRoot, "src/service/main.ts")]
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd ?? repoRoot,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", NODE_ENV: "production", ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  child.stdout!.on("data", (chunk) => (out += chunk.toString()))
  child.stderr!.on("data", (chunk) => (err += chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  return { process: child, output: () => out + err, stderr: () => err, exited }
}

export const waitHealthy = (base: string, timeoutMs = 60_000) =>
  eventually(async () => {
    const reply = await request(base, "GET", "/health")
    return reply.status === 200 ? reply : undefined
  }, timeoutMs, 100)

/** Waits for exit, at most `timeoutMs`, then SIGKILLs (a test must never leave a process behind). */
export const waitExit = async (child: Child, timeoutMs = 30_000) => {
  const timer = setTimeout(() => child.process.kill("SIGKILL"), timeoutMs)
  try {
    return await child.exited
  } finally {
    clearTimeout(timer)
  }
}
