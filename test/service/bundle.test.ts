/**
 * The service's bundle as `npm start` builds and runs it: scripts/build-service.ts
 * (its `prestart`) writes the esbuild bundle (with the dashboard's browser script built
 * into it), its V8 code cache and start.sh, and
 * `sh dist/bundle/start.sh` (also the image's CMD) starts it from that cache, answers
 * /health and drains on SIGTERM.
 *
 * The build runs as `npm start`'s prestart does, into a temp dir inside the repo (so
 * the packages left out of the bundle resolve from node_modules).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { browserScript } from "../../src/http/dashboard/script.js"
import { type Child, freePort, fundedPayer, paidRequest, register, repoRoot, request, spawnService, tempDir, waitExit, waitHealthy } from "./support.js"

interface Built {
  readonly bundle: string
  readonly output: string
  readonly dispose: () => void
}

const build = async (): Promise<Built> => {
  const distDir = path.join(repoRoot, ".vitest-tmp", `bundle-${process.pid}`)
  const child = spawnService({
    command: ["node", "--import", "tsx", path.join(repoRoot, "scripts/build-service.ts"), "--dist", distDir],
    env: {}
  })
  const exit = await waitExit(child, 240_000)
  expect(exit.code, child.output()).toBe(0)
  return { bundle: path.join(distDir, "bundle"), output: child.output(), dispose: () => fs.rmSync(distDir, { recursive: true, force: true }) }
}

interface Started {
  readonly child: Child
  readonly base: string
  readonly stop: () => Promise<{ readonly code: number | null }>
}

const start = async (command: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Started> => {
  const port = await freePort()
  const child = spawnService({
    command,
    env: { PORT: String(port), METRICS_PORT: String(await freePort()), HOST: "127.0.0.1", DATA_DIR: tempDir(), ...env }
  })
  const base = `http://127.0.0.1:${port}`
  try {
    await waitHealthy(base, 60_000)
  } catch (error) {
    child.process.kill("SIGKILL")
    throw new Error(`${String(error)}\n${child.output()}`)
  }
  return {
    child,
    base,
    stop: () => {
      child.process.kill("SIGTERM")
      return waitExit(child)
    }
  }
}

/** The random part of a time-ordered id (`esc_<11 chars of ms><16 random>`): the time part differs anyway. */
const randomPart = (id: string) => id.slice(-16)

describe("the service's bundle", () => {
  let service: Built
  beforeAll(async () => {
    service = await build()
  }, 240_000)
  afterAll(() => service?.dispose())

  it("is the program, its code cache, its launcher and start.sh, built without a warning", () => {
    expect(service.output).not.toMatch(/build-service:/)
    expect(fs.readdirSync(service.bundle).sort()).toEqual(["service.cjs", "service.cjs.codecache", "service.cjs.map", "service.js", "start.sh"])
  })

  it("did not bundle the effect and @effect/platform indexes (they would run every module of their packages)", () => {
    const bundled = fs.readFileSync(path.join(service.bundle, "service.cjs"), "utf8")
    // esbuild names each module in a comment, relative to the repo (node_modules may be a symlink elsewhere).
    const modules = (name: string) => bundled.match(new RegExp(`^// (?:\\S*/)?node_modules/${name}$`, "gm"))
    expect(modules("effect/dist/esm/Effect\\.js")).toHaveLength(1)
    expect(modules("(effect|@effect/platform)/dist/esm/index\\.js")).toBeNull()
  })

  it("serves the dashboard's script built into it (no esbuild at run time), the same as built from the sources", async () => {
    const bundled = fs.readFileSync(path.join(service.bundle, "service.cjs"), "utf8")
    expect(bundled).not.toMatch(/require\("esbuild"\)/)
    const started = await start(["sh", path.join(service.bundle, "start.sh")])
    try {
      const served = await fetch(`${started.base}/dashboard/app.js`)
      expect(served.status).toBe(200)
      expect(await served.text()).toBe(browserScript())
    } finally {
      expect((await started.stop()).code).toBe(0)
    }
    // And beside tsc's output, for the CLI and the library.
    expect(fs.readFileSync(path.join(service.bundle, "..", "http", "dashboard", "app.js"), "utf8")).toBe(browserScript())
  })

  it("starts when reached through a symlinked directory (as a release directory often is)", async () => {
    const link = path.join(tempDir("ringmaster-bundle-link-"), "current")
    fs.symlinkSync(service.bundle, link)
    const started = await start(["sh", path.join(link, "start.sh")])
    expect((await request(started.base, "GET", "/health")).status).toBe(200)
    expect((await started.stop()).code).toBe(0)
  })

  it("starts from start.sh on its code cache, serves, mints ids of its own per process, and drains on SIGTERM", async () => {
    const minted = async (started: Started) => {
      const payer = await fundedPayer(started.base)
      const inference = await paidRequest(started.base, started.base, payer, "/inference", { prompt: "hello" })
      expect(inference.status).toBe(200)
      const agent = await register(started.base, "another")
      return { escrowId: inference.body.escrow_id as string, agentId: agent.agentId, wallet: agent.wallet }
    }
    const command = ["sh", path.join(service.bundle, "start.sh")]
    const [a, b] = [await start(command), await start(command)]
    try {
      // start.sh exec's node (the child is node itself), so SIGTERM reaches the service.
      expect(fs.readFileSync(`/proc/${a.child.process.pid}/cmdline`, "utf8").split("\0").slice(1, -1)).toEqual([path.join(service.bundle, "service.js")])
      const [idsA, idsB] = [await minted(a), await minted(b)]
      expect(idsA.escrowId).toMatch(/^esc_/)
      expect(randomPart(idsA.escrowId)).not.toBe(randomPart(idsB.escrowId))
      expect(randomPart(idsA.agentId)).not.toBe(randomPart(idsB.agentId))
      expect(idsA.wallet).not.toBe(idsB.wallet)
    } finally {
      const exits = await Promise.all([a.stop(), b.stop()])
      expect(exits.map((exit) => exit.code)).toEqual([0, 0])
      expect(a.child.output()).toMatch(/drained/)
      // The start line says how the process started: an operator sees a fallback there.
      expect(a.child.output()).toMatch(/startedFrom: 'code cache \(accepted\)'/)
    }
  }, 120_000)
})
