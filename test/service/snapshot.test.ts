/**
 * The service's startup snapshot (scripts/service-snapshot.ts) and the script that
 * picks it (scripts/service-start.sh, `npm start`, the image's CMD).
 *
 * A snapshot is one heap for every process started from it: what the program's
 * modules computed while it was built is the same in all of them. These tests start
 * two processes from one blob and check that what must differ does: escrow ids (the
 * random pool of src/domain/ids.ts), Effect's default Random, Math.random; that argv,
 * cwd and the environment are the process's own; that start.sh falls back to the code
 * cache whenever node could refuse the blob; and that the build keeps no snapshot of a
 * program that reads the clock while loading.
 *
 * Each build runs scripts/build-service.ts as `npm start`'s prestart does, into a temp
 * dir inside the repo (so the packages left out of the bundle resolve from node_modules).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import type { ProbeFacts } from "./fixtures/snapshot-probe.js"
import { type Child, freePort, paidRequest, payerWithMandate, register, repoRoot, request, spawnService, tempDir, waitExit, waitHealthy } from "./support.js"

interface Built {
  readonly bundle: string
  readonly output: string
  readonly dispose: () => void
}

const build = async (name: string, entry?: string): Promise<Built> => {
  const distDir = path.join(repoRoot, ".vitest-tmp", `snapshot-${name}-${process.pid}`)
  const child = spawnService({
    command: ["node", "--import", "tsx", path.join(repoRoot, "scripts/build-service.ts"), "--dist", distDir, ...(entry === undefined ? [] : ["--entry", entry])],
    env: {}
  })
  const exit = await waitExit(child, 240_000)
  expect(exit.code, child.output()).toBe(0)
  return { bundle: path.join(distDir, "bundle"), output: child.output(), dispose: () => fs.rmSync(distDir, { recursive: true, force: true }) }
}

interface Started {
  readonly child: Child
  readonly base: string
  /** Whether node runs on the blob (its command line, /proc: the child is node itself, start.sh exec'd it). */
  readonly fromSnapshot: boolean
  readonly stop: () => Promise<{ readonly code: number | null }>
}

const start = async (command: ReadonlyArray<string>, env: Record<string, string> = {}, cwd?: string): Promise<Started> => {
  const port = await freePort()
  const child = spawnService({
    command,
    env: { PORT: String(port), METRICS_PORT: String(await freePort()), HOST: "127.0.0.1", DATA_DIR: tempDir(), ...env },
    ...(cwd === undefined ? {} : { cwd })
  })
  const base = `http://127.0.0.1:${port}`
  try {
    await waitHealthy(base, 60_000)
  } catch (error) {
    child.process.kill("SIGKILL")
    throw new Error(`${String(error)}\n${child.output()}`)
  }
  const fromSnapshot = fs.readFileSync(`/proc/${child.process.pid}/cmdline`, "utf8").split("\0").includes("--snapshot-blob")
  return {
    child,
    base,
    fromSnapshot,
    stop: () => {
      child.process.kill("SIGTERM")
      return waitExit(child)
    }
  }
}

const facts = async (started: Started): Promise<ProbeFacts> => (await request(started.base, "GET", "/health")).body as ProbeFacts

/** The random part of a time-ordered id (`esc_<11 chars of ms><16 random>`): the time part differs anyway. */
const randomPart = (id: string) => id.slice(-16)

describe("a program started from its startup snapshot", () => {
  let probe: Built
  beforeAll(async () => {
    probe = await build("probe", path.join(repoRoot, "test/service/fixtures/snapshot-probe.ts"))
  }, 240_000)
  afterAll(() => probe?.dispose())

  const startSh = () => ["sh", path.join(probe.bundle, "start.sh")]

  it("has randomness of its own: two processes from one blob mint different escrow ids and draw different numbers", async () => {
    const [a, b] = [await start(startSh()), await start(startSh())]
    try {
      expect([a.fromSnapshot, b.fromSnapshot]).toEqual([true, true])
      const [factsA, factsB] = [await facts(a), await facts(b)]
      expect(factsA.escrowId).toMatch(/^esc_[0-9a-z]{27}$/)
      expect(randomPart(factsA.escrowId)).not.toBe(randomPart(factsB.escrowId))
      expect(factsA.effectRandom).not.toBe(factsB.effectRandom)
      expect(factsA.mathRandom).not.toBe(factsB.mathRandom)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it("has this process's argv, cwd, environment and clock, as when started from the code cache", async () => {
    const cwd = tempDir("ringmaster-snapshot-cwd-")
    const launcher = path.join(probe.bundle, "service.js")
    const fromSnapshot = await start(startSh(), { PROBE_VALUE: "from the environment of this start" }, cwd)
    const fromCodeCache = await start(["node", launcher], { PROBE_VALUE: "from the environment of this start" }, cwd)
    try {
      expect([fromSnapshot.fromSnapshot, fromCodeCache.fromSnapshot]).toEqual([true, false])
      const [snapshot, codeCache] = [await facts(fromSnapshot), await facts(fromCodeCache)]
      expect(snapshot.argv).toEqual(codeCache.argv)
      expect(snapshot.argv.slice(1)).toEqual([launcher])
      expect(snapshot.cwd).toBe(fs.realpathSync(cwd))
      expect(snapshot.probeValue).toBe("from the environment of this start")
      // Effect's nanosecond clock is computed from this process's clocks, not the build's.
      expect(Math.abs(snapshot.clockSkewMs)).toBeLessThan(1_000)
    } finally {
      expect((await fromSnapshot.stop()).code).toBe(0)
      await fromCodeCache.stop()
    }
  })

  it("start.sh starts from the code cache whenever node might refuse the blob", async () => {
    // A copy to change: the other tests share the build.
    const copy = path.join(tempDir("ringmaster-snapshot-copy-"), "bundle")
    fs.cpSync(probe.bundle, copy, { recursive: true })
    const startCopy = ["sh", path.join(copy, "start.sh")]
    const fromSnapshot = async (env: Record<string, string> = {}) => {
      const started = await start(startCopy, env)
      await started.stop()
      return started.fromSnapshot
    }
    try {
      expect(await fromSnapshot()).toBe(true)
      expect(await fromSnapshot({ NODE_OPTIONS: "--max-old-space-size=512" })).toBe(false)
      expect(await fromSnapshot({ RINGMASTER_SNAPSHOT: "0" })).toBe(false)
      fs.writeFileSync(path.join(copy, "service.blob.node"), "v0.0.0\n")
      expect(await fromSnapshot()).toBe(false)
      fs.rmSync(path.join(copy, "service.blob"))
      fs.writeFileSync(path.join(copy, "service.blob.node"), `${process.version}\n`)
      expect(await fromSnapshot()).toBe(false)
    } finally {
      fs.rmSync(path.dirname(copy), { recursive: true, force: true })
    }
  }, 60_000)

  // Node 22 (the image's) runs a blob under other V8 flags (even --no-lazy, checked with
  // 22.23.3); start.sh keeps the check for both: it is Node 20's refusal that would be fatal.
  it.runIf(Number(process.versions.node.split(".")[0]) < 22)("is refused by node 20 under other V8 flags, before anything runs (why start.sh checks NODE_OPTIONS)", async () => {
    const refused = await promisify(execFile)("node", ["--max-old-space-size=512", "--snapshot-blob", path.join(probe.bundle, "service.blob")])
      .then(() => undefined, (error: { code?: number; stderr?: string }) => error)
    expect(refused?.code).toBe(14)
    expect(refused?.stderr).toMatch(/Failed to load the startup snapshot/)
  })
})

describe("a program that reads the clock while it loads", () => {
  it("gets no snapshot (the build says what it read, and where), and start.sh starts it from the code cache", async () => {
    const unsafe = await build("unsafe", path.join(repoRoot, "test/service/fixtures/snapshot-probe-unsafe.ts"))
    try {
      expect(unsafe.output).toMatch(/no startup snapshot/)
      expect(unsafe.output).toMatch(/Date\.now \(test\/service\/fixtures\/snapshot-probe-unsafe\.ts/)
      expect(fs.existsSync(path.join(unsafe.bundle, "service.blob"))).toBe(false)
      expect(fs.existsSync(path.join(unsafe.bundle, "service.blob.node"))).toBe(false)
      const started = await start(["sh", path.join(unsafe.bundle, "start.sh")])
      expect(started.fromSnapshot).toBe(false)
      expect((await started.stop()).code).toBe(0)
    } finally {
      unsafe.dispose()
    }
  }, 240_000)
})

describe("the service started from its snapshot", () => {
  let service: Built
  beforeAll(async () => {
    service = await build("service")
  }, 240_000)
  afterAll(() => service?.dispose())

  it("holds the bytecode a start runs: its builder compiled the service with a code cache it accepted (Node 22 rejects the launcher's)", () => {
    expect(service.output).not.toMatch(/built without the code cache/)
    expect(fs.existsSync(path.join(service.bundle, "service.blob.node"))).toBe(true)
  })

  it("did not evaluate the effect and @effect/platform modules the service does not use (their indexes run them all)", () => {
    const reads = JSON.parse(fs.readFileSync(path.join(service.bundle, "service.blob.audit.json"), "utf8")) as Array<{ modules: Array<string> }>
    expect(reads.length).toBeGreaterThan(0)
    expect(reads.flatMap((read) => read.modules).filter((module) => /msgpackr/.test(module))).toEqual([])
    const bundled = fs.readFileSync(path.join(service.bundle, "service.cjs"), "utf8")
    expect(bundled.match(/^\/\/ node_modules\/(effect|@effect\/platform)\/dist\/esm\/index\.js$/gm)).toBeNull()
  })

  it("two services from one blob mint different escrow, agent and wallet ids, and drain on SIGTERM", async () => {
    const minted = async (started: Started) => {
      const orchestrator = (await request(started.base, "GET", "/info")).body.wallet_address as string
      const payer = await payerWithMandate(started.base, orchestrator)
      const inference = await paidRequest(started.base, started.base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "hello" })
      expect(inference.status).toBe(200)
      const agent = await register(started.base, "another")
      return { escrowId: inference.body.escrow_id as string, agentId: agent.agentId, wallet: agent.wallet, referralCode: agent.referralCode }
    }
    const command = ["sh", path.join(service.bundle, "start.sh")]
    const [a, b] = [await start(command), await start(command)]
    try {
      expect([a.fromSnapshot, b.fromSnapshot]).toEqual([true, true])
      const [idsA, idsB] = [await minted(a), await minted(b)]
      expect(idsA.escrowId).toMatch(/^esc_/)
      expect(randomPart(idsA.escrowId)).not.toBe(randomPart(idsB.escrowId))
      expect(randomPart(idsA.agentId)).not.toBe(randomPart(idsB.agentId))
      expect(idsA.wallet).not.toBe(idsB.wallet)
      expect(idsA.referralCode).not.toBe(idsB.referralCode)
    } finally {
      const exits = await Promise.all([a.stop(), b.stop()])
      expect(exits.map((exit) => exit.code)).toEqual([0, 0])
      expect(a.child.output()).toMatch(/drained/)
      // The start line says how the process started: an operator sees a fallback there.
      expect(a.child.output()).toMatch(/startedFrom: 'snapshot'/)
    }
  }, 120_000)
})
