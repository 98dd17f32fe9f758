/**
 * Runs an example client as a child process with a time bound and finds its summary
 * line. Shared by the client tests; the process group is killed when the scope
 * closes, so a hung client cannot outlive its test.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Command } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Stream } from "effect"

export const repoRoot = join(import.meta.dirname, "..", "..")

export interface Finished {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** Reads one output stream whole, bounded (a client prints a few KiB). */
const collect = (stream: Stream.Stream<Uint8Array, unknown>, maxBytes = 1 << 20) =>
  stream.pipe(
    Stream.runFold({ bytes: 0, chunks: Chunk.empty<Uint8Array>() }, (acc, chunk) =>
      acc.bytes >= maxBytes ? acc : { bytes: acc.bytes + chunk.length, chunks: Chunk.append(acc.chunks, chunk) }),
    Effect.map(({ chunks }) => Buffer.concat(Chunk.toReadonlyArray(chunks)).toString("utf8"))
  )

/** Runs `command` to completion within `timeoutMs`, or fails (and kills it). */
export const runProcess = (command: Command.Command, timeoutMs: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const process = yield* Command.start(command)
      const [stdout, stderr, exitCode] = yield* Effect.all(
        [collect(process.stdout), collect(process.stderr), process.exitCode],
        { concurrency: "unbounded" }
      )
      return { exitCode: Number(exitCode), stdout, stderr } satisfies Finished
    })
  ).pipe(
    Effect.timeoutFail({
      duration: `${timeoutMs} millis`,
      onTimeout: () => new Error(`${Command.flatten(command).map((c) => c.command).join(" | ")} did not finish within ${timeoutMs} ms`)
    }),
    Effect.provide(NodeContext.layer)
  )

/** The last stdout line that is a JSON object: the client's summary. */
export const summaryOf = (finished: Finished): Record<string, any> => {
  const line = finished.stdout.trim().split("\n").reverse().find((l) => l.startsWith("{"))
  if (line === undefined) {
    throw new Error(`no JSON summary line (exit ${finished.exitCode})\nstdout:\n${finished.stdout}\nstderr:\n${finished.stderr}`)
  }
  return JSON.parse(line)
}

// --- Toolchains. Probed synchronously at load so a missing one shows as a skipped test with its reason.

/** The Python with httpx: Debian's `/usr/bin/python3` (python3-httpx), or `PYTHON` if set. */
export const python: { readonly path: string | null; readonly reason: string } = (() => {
  const candidates = [process.env.PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p)
  for (const path of candidates) {
    const probe = spawnSync(path, ["-c", "import httpx"], { timeout: 10_000, stdio: "ignore" })
    if (probe.status === 0) return { path, reason: "" }
  }
  return {
    path: null,
    reason: `no python3 with httpx (tried ${candidates.join(", ")}): apt-get install -y python3-httpx`
  }
})()

export const go: { readonly available: boolean; readonly reason: string } = (() => {
  const probe = spawnSync("go", ["version"], { timeout: 10_000, stdio: "ignore" })
  return probe.status === 0
    ? { available: true, reason: "" }
    : { available: false, reason: "no Go toolchain on PATH: apt-get install -y golang-go" }
})()

/**
 * Go's environment for an offline build of a standard-library-only module: no
 * proxy, no network, and a build cache in the temp dir (kept across runs so the
 * second build is fast; HOME may be read-only in CI).
 */
export const goEnv = (): Record<string, string> => {
  const root = join(tmpdir(), "ringmaster-go")
  mkdirSync(join(root, "cache"), { recursive: true })
  mkdirSync(join(root, "path"), { recursive: true })
  return {
    GOCACHE: process.env.GOCACHE ?? join(root, "cache"),
    GOPATH: join(root, "path"),
    GOPROXY: "off",
    GOFLAGS: "-mod=mod",
    GOTOOLCHAIN: "local",
    GO111MODULE: "on",
    CGO_ENABLED: "0"
  }
}
