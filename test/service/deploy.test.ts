/**
 * The deployment files agree with the code: fly.toml (ports, health path, metrics,
 * mount, every env name), the Dockerfile (its command, /data, exposed ports), and
 * the Dockerfile's command really starts the service with fly.toml's `[env]`.
 *
 * There is no Docker engine on the build machines: the image build itself is not
 * tested here. The last test builds the service as the image's build stage does
 * (scripts/build-service.ts: the bundle and its code cache, into a temp dir) and runs
 * the image's `CMD` on that output.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as path from "node:path"
import { ConfigError, ConfigProvider, ConfigProviderPathPatch as PathPatch, Effect, HashSet, Redacted } from "effect"
import { parse } from "smol-toml"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import { SystemGroup } from "../../src/http/Api.js"
import * as ServiceSettings from "../../src/service/ServiceConfig.js"
import { freePort, repoRoot, request, spawnService, tempDir, waitExit, waitHealthy } from "./support.js"

const fly = parse(fs.readFileSync(path.join(repoRoot, "fly.toml"), "utf8")) as any
const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8")
const flyEnv = fly.env as Record<string, string>

/** The last `CMD` in exec form. */
const dockerCmd = (): Array<string> => {
  const lines = dockerfile.split("\n").filter((l) => /^CMD\s+\[/.test(l))
  return JSON.parse(lines.at(-1)!.replace(/^CMD\s+/, ""))
}

/** Every variable name the service's configuration asks its provider for. */
const namesRead = () => {
  const seen = new Set<string>()
  // Answers "missing" to everything, noting what was asked: every Config.withDefault is then visited too.
  const provider = ConfigProvider.fromFlat(ConfigProvider.makeFlat({
    load: (path) => {
      seen.add(path.join("."))
      return Effect.fail(ConfigError.MissingData([...path], "recording"))
    },
    enumerateChildren: () => Effect.succeed(HashSet.empty()),
    patch: PathPatch.empty
  }))
  Effect.runSync(Effect.either(Effect.withConfigProvider(ServiceSettings.fromEnv, provider)))
  Effect.runSync(Effect.either(Effect.withConfigProvider(SettlementSettings.fromEnv, provider)))
  return seen
}

describe("fly.toml agrees with the code", () => {
  it("app, region, service port, health check, concurrency, TLS and metrics", () => {
    expect(fly.app).toMatch(/\S/)
    expect(fly.primary_region).toBe("iad")
    const service = fly.services[0]
    expect(service.internal_port).toBe(ServiceSettings.defaults.port)
    expect(Number(flyEnv["PORT"])).toBe(service.internal_port)
    expect(service.http_checks[0].path).toBe(SystemGroup.endpoints.health.path)
    expect(service.concurrency).toEqual({ type: "requests", soft_limit: 200, hard_limit: 250 })
    expect(service.ports).toEqual([
      { port: 443, handlers: ["tls", "http"] },
      { port: 80, handlers: ["http"], force_https: true }
    ])
    expect(service.auto_stop_machines).toBeDefined()
    expect(service.auto_start_machines).toBe(true)
    expect(fly.metrics).toEqual({ port: ServiceSettings.defaults.metricsPort, path: ServiceSettings.defaults.metricsPath })
    expect(Number(flyEnv["METRICS_PORT"])).toBe(fly.metrics.port)
    expect(fly.kill_signal).toBe("SIGTERM")
  })

  it("the volume mounts where the service keeps its data, and the image prepares it", () => {
    expect(fly.mounts).toEqual({ source: "agent_data", destination: "/data" })
    expect(flyEnv["DATA_DIR"]).toBe(fly.mounts.destination)
    expect(dockerfile).toMatch(/DATA_DIR=\/data/)
    expect(dockerfile).toMatch(/mkdir -p \/data && chown node:node \/data/)
    expect(dockerfile).toMatch(/^EXPOSE 8080 9091$/m)
  })

  it("every [env] name is one the configuration reads; the public ones are there, the secrets are not", () => {
    const read = namesRead()
    for (const name of Object.keys(flyEnv)) expect(read, `fly.toml [env] ${name} is read by nothing`).toContain(name)
    for (const name of ServiceSettings.variables.public) expect(Object.keys(flyEnv)).toContain(name)
    for (const name of ServiceSettings.variables.secrets) {
      expect(read).toContain(name)
      expect(Object.keys(flyEnv)).not.toContain(name)
    }
    for (const name of [...ServiceSettings.variables.service, ...ServiceSettings.variables.fly]) expect(read).toContain(name)
  })

  it("[env] validates: embedded settlement, the default 1% fee and 15% referral", () => {
    const config = Effect.runSync(Effect.withConfigProvider(ServiceSettings.fromEnv, ServiceSettings.provider({ env: {}, flyTomlEnv: flyEnv })))
    expect(config.settlement._tag).toBe("Embedded")
    expect(config.ledger.fees.feePpm).toBe(10_000)
    expect(config.ledger.fees.referralTiersPpm).toEqual([150_000])
    expect(config.dataDir).toBe("/data")
  })
})

describe("configuration layers", () => {
  it("defaults < fly.toml [env] < environment; secrets stay redacted", () => {
    const provider = ServiceSettings.provider({
      env: { ESCROW_FEE: "0.02", ESCROW_BASE: "http://settlement.internal:8080", PF_API_KEY: "pk_secret_value", AGENT_WALLET: "0x" + "ab".repeat(20), FLY_REGION: "lhr" },
      flyTomlEnv: { ESCROW_FEE: "0.01", REFERRAL_RATE: "0.1", ESCROW_BASE: "" }
    })
    const config = Effect.runSync(Effect.withConfigProvider(ServiceSettings.fromEnv, provider))
    expect(config.ledger.fees.feePpm).toBe(20_000) // environment over fly.toml
    expect(config.ledger.fees.referralTiersPpm).toEqual([100_000]) // fly.toml over the default
    expect(config.port).toBe(8080) // the default
    expect(config.region).toBe("lhr")
    expect(config.ledger.region).toBe("lhr")
    expect(config.logFormat).toBe("json") // on Fly
    if (config.settlement._tag !== "Remote") throw new Error("expected remote settlement")
    expect(config.settlement.baseUrl).toBe("http://settlement.internal:8080")
    expect(config.settlement.faucetBaseUrl).toBe("http://settlement.internal:8080")
    expect(Redacted.value(config.settlement.apiKey)).toBe("pk_secret_value")
    expect(String(config.settlement.apiKey)).not.toContain("pk_secret_value")
    expect(JSON.stringify(config, (_, v) => (typeof v === "bigint" ? v.toString() : v))).not.toContain("pk_secret_value")
  })
})

describe("the Dockerfile's command", () => {
  it("is the bundle's start script, like `npm start`", () => {
    expect(dockerCmd()).toEqual(["sh", "dist/bundle/start.sh"])
    const scripts = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")).scripts
    expect(scripts.start).toBe(dockerCmd().join(" "))
    // The build stage makes the code cache with the runtime's node: the same image.
    expect(dockerfile).toMatch(/^FROM node:\$\{NODE_VERSION\}-slim AS toolchain$/m)
    expect(dockerfile).toMatch(/^FROM toolchain AS build$/m)
    expect(dockerfile).toMatch(/^RUN npm run build$/m)
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m)
    expect(dockerfile).toMatch(/^COPY scripts \.\/scripts$/m)
    expect(dockerfile).toMatch(/^FROM node:\$\{NODE_VERSION\}-slim AS runtime$/m)
    expect(dockerfile).toMatch(/npm ci --omit=dev/)
    expect(dockerfile).toMatch(/setpriv --reuid=node/)
  })

  it("started with fly.toml's [env] (as on Fly), answers /health 200 with JSON logs, exports traces, and stops on SIGTERM", async () => {
    // Bundle as the image's build stage does (with its code cache), into a
    // temp dir inside the repo (so the native modules the bundle leaves out resolve
    // from node_modules).
    const outDir = path.join(repoRoot, ".vitest-tmp", `docker-dist-${process.pid}`)
    // Asynchronously: a blocking spawn would starve the test worker's RPC for the whole build.
    const build = spawnService({
      command: ["node", "--import", "tsx", path.join(repoRoot, "scripts/build-service.ts"), "--dist", outDir],
      env: {}
    })
    await waitExit(build, 240_000)
    const cmd = dockerCmd()
    const entry = path.join(outDir, cmd[1]!.replace(/^dist\//, ""))
    expect(fs.existsSync(entry), `the build did not emit ${entry}: ${build.output()}`).toBe(true)

    // An OTLP collector, as a Fly secret OTEL_EXPORTER_OTLP_ENDPOINT would name: the bundle
    // loads the tracing SDK on demand (src/service/Telemetry.ts), which only the bundle shows works.
    const traceExports: Array<string> = []
    const collector = createServer((request, response) => {
      request.resume().on("end", () => {
        traceExports.push(`${request.method} ${request.url}`)
        response.end("{}")
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
    const collectorPort = (collector.address() as { port: number }).port

    // The machine-local resources are the only overrides: free ports instead of 8080/9091
    // (other processes may hold them here) and a temp dir standing in for the volume.
    const port = await freePort()
    const metricsPort = await freePort()
    const child = spawnService({
      command: [cmd[0]!, entry],
      env: {
        ...flyEnv,
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        HOST: "127.0.0.1",
        DATA_DIR: tempDir(),
        FLY_REGION: "iad",
        FLY_APP_NAME: "ringmaster-orchestrator",
        FLY_MACHINE_ID: "test-machine",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`
      }
    })
    try {
      const base = `http://127.0.0.1:${port}`
      const health = await waitHealthy(base, 90_000).catch((e) => {
        throw new Error(`${String(e)}\n${child.output()}`)
      })
      expect(health.body).toEqual({ ok: true, region: "iad" })
      // start.sh exec'd node on the launcher (the process is the child itself, which SIGTERM reaches).
      expect(fs.readFileSync(`/proc/${child.process.pid}/cmdline`, "utf8").split("\0").slice(1, -1)).toEqual([path.join(outDir, "bundle", "service.js")])
      expect((await request(base, "GET", "/info")).body.region).toBe("iad")
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200)
      child.process.kill("SIGTERM")
      expect((await waitExit(child)).code).toBe(0)
      const logLines = child.output().split("\n").filter((l) => l.startsWith("{"))
      expect(logLines.length).toBeGreaterThan(0)
      const started = logLines.map((l) => JSON.parse(l)).find((l) => String(l.message).includes("service started"))
      expect(started?.annotations).toMatchObject({ region: "iad", fly_app: "ringmaster-orchestrator", fly_machine: "test-machine" })
      expect(JSON.stringify(started?.message)).toContain(`"startedFrom":"code cache (accepted)"`)
      // The spans of the requests above, flushed at shutdown at the latest.
      expect(traceExports).toContain("POST /v1/traces")
    } finally {
      collector.close()
      if (child.process.exitCode === null) child.process.kill("SIGKILL")
      fs.rmSync(outDir, { recursive: true, force: true })
    }
  }, 360_000)
})
