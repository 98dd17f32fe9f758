/**
 * What importing the package costs, entry by entry, as compiled (`dist/`, what an
 * installed package runs): modules loaded, time of the `import` and the process's RSS
 * after it, each a fresh `node` process, median of `--runs` (default 5). Side by side:
 * the core entry (`ringmaster`), the SQLite and HTTP-client entries, the full service
 * entry (`ringmaster/service`), every entry at once (what the single entry loaded
 * before the package had entries), a program that only uses `EscrowTest`, and
 * `ringmaster --version`; and Effect's own index alone, the floor under all of them.
 * Then the size of the tarball `npm pack` makes.
 *
 * Targets: the core at most 1/3 of the service entry's modules and time; the
 * EscrowTest program at most 60 MB RSS; the tarball at most 1 MB.
 *
 * The modules are counted in a separate run with a module loader hook (which slows
 * loading), so the timed runs have none.
 *
 *   tsx bench/import.ts [--runs 5]
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"

const exec = promisify(execFile)
const repo = path.resolve(import.meta.dirname, "..")
const dist = path.join(repo, "dist")
const runsArg = process.argv.indexOf("--runs")
const RUNS = runsArg === -1 ? 5 : Number(process.argv[runsArg + 1])
const work = fs.mkdtempSync(path.join(os.tmpdir(), "rm-bench-import-"))

// `npm pack` runs `prepack` (tsc into dist), so what is measured is what is shipped.
const packed = JSON.parse(
  (await exec("npm", ["pack", "--json", "--pack-destination", work], { cwd: repo, maxBuffer: 64 * 1024 * 1024 })).stdout
) as ReadonlyArray<{ readonly size: number; readonly unpackedSize: number; readonly entryCount: number }>

const entry = (name: string) => pathToFileURL(path.join(dist, `${name}.js`)).href

/** The module loader hook of the counting run: records every URL loaded, and reports them on request. */
fs.writeFileSync(
  path.join(work, "hooks.mjs"),
  `const urls = new Set()
export async function initialize({ port }) { port.on("message", () => port.postMessage([...urls])) }
export async function load(url, context, next) { urls.add(url); return next(url, context) }
`
)
fs.writeFileSync(
  path.join(work, "count.mjs"),
  `import { createRequire, register } from "node:module"
import { fileURLToPath } from "node:url"
import { MessageChannel } from "node:worker_threads"
const { port1, port2 } = new MessageChannel()
register(${JSON.stringify(pathToFileURL(path.join(work, "hooks.mjs")).href)}, { data: { port: port2 }, transferList: [port2] })
port1.unref()
globalThis.__loadedModules = () => new Promise((resolve) => {
  port1.ref()
  port1.once("message", (urls) => {
    port1.unref()
    const files = new Set(urls.filter((u) => u.startsWith("file:")).map((u) => fileURLToPath(u)))
    // CommonJS modules required from CommonJS (pg, better-sqlite3, ...) bypass the ESM hooks.
    for (const file of Object.keys(createRequire(import.meta.url).cache)) files.add(file)
    resolve(files.size)
  })
  port1.postMessage("list")
})
`
)

interface Subject {
  readonly name: string
  /** Module source; it must print one JSON line `{ ms, rss }` (and `modules` when counting). */
  readonly source: string
}

const report = `const modules = globalThis.__loadedModules ? await globalThis.__loadedModules() : undefined
console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss, modules }))
process.exit(0)`

const importOf = (name: string, urls: ReadonlyArray<string>): Subject => ({
  name,
  source: `const start = performance.now()
${urls.map((u) => `await import(${JSON.stringify(u)})`).join("\n")}
const ms = performance.now() - start
${report}`
})

const subjects: ReadonlyArray<Subject> = [
  importOf("import ringmaster (core)", [entry("index")]),
  importOf("import ringmaster/sqlite", [entry("sqlite")]),
  importOf("import ringmaster/http", [entry("http")]),
  importOf("import ringmaster/service (full)", [entry("service")]),
  importOf("import every entry", ["index", "sqlite", "postgres", "http", "server", "service"].map(entry)),
  {
    name: "EscrowTest-only program",
    source: `const start = performance.now()
const { Effect } = await import(${JSON.stringify(pathToFileURL(path.join(repo, "node_modules/effect/dist/esm/index.js")).href)})
const { Escrow, EscrowTest, Usdc } = await import(${JSON.stringify(entry("index"))})
await Effect.runPromise(Effect.gen(function*() {
  const { ledger } = yield* EscrowTest
  const payer = yield* ledger.registerAgent({ name: "payer" })
  const payee = yield* ledger.registerAgent({ name: "payee" })
  yield* ledger.deposit(payer.wallet, Usdc.make("100"))
  yield* Escrow.use({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("10"), description: "x" }, () => Effect.void)
}).pipe(Effect.provide(EscrowTest.layer())))
const ms = performance.now() - start
${report}`
  },
  // The floor under every entry: Effect's own index (the core's modules are nearly all Effect's).
  importOf("import effect (alone)", [pathToFileURL(path.join(repo, "node_modules/effect/dist/esm/index.js")).href])
]

interface Sample {
  readonly ms: number
  readonly rss: number
  readonly modules?: number
}

const runNode = async (args: ReadonlyArray<string>): Promise<Sample> => {
  const { stdout } = await exec(process.execPath, [...args], { cwd: work, maxBuffer: 16 * 1024 * 1024 })
  return JSON.parse(stdout.trim().split("\n").pop()!) as Sample
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

interface Row {
  readonly name: string
  readonly modules: number
  readonly ms: number
  readonly rssMb: number
}

const rows: Array<Row> = []
for (const subject of subjects) {
  const file = path.join(work, `${rows.length}.mjs`)
  fs.writeFileSync(file, subject.source)
  const counted = await runNode(["--import", pathToFileURL(path.join(work, "count.mjs")).href, file])
  const samples: Array<Sample> = []
  for (let i = 0; i < RUNS; i++) samples.push(await runNode([file]))
  rows.push({
    name: subject.name,
    modules: counted.modules ?? 0,
    ms: median(samples.map((s) => s.ms)),
    rssMb: median(samples.map((s) => s.rss)) / 1024 / 1024
  })
}

// The binary: wall time of the whole process (node's own start included), as a user waits for it.
const cliTimes: Array<number> = []
for (let i = 0; i < RUNS; i++) {
  const start = performance.now()
  await exec(process.execPath, [path.join(dist, "cli", "main.js"), "--version"], { cwd: work })
  cliTimes.push(performance.now() - start)
}

const pad = (s: string, n: number) => s.padEnd(n)
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "unknown cpu"}, median of ${RUNS} runs\n`)
console.log(`${pad("", 34)}${pad("modules", 10)}${pad("import ms", 12)}RSS MB`)
for (const row of rows) {
  console.log(`${pad(row.name, 34)}${pad(String(row.modules), 10)}${pad(row.ms.toFixed(0), 12)}${row.rssMb.toFixed(1)}`)
}
const core = rows[0]!
const full = rows[3]!
console.log(
  `\ncore / service entry: ${(core.modules / full.modules).toFixed(2)} of the modules, ${(core.ms / full.ms).toFixed(2)} of the time (target ≤ 0.33)`
)
console.log(`EscrowTest-only program: ${rows[5]!.rssMb.toFixed(1)} MB RSS (target ≤ 60)`)
console.log(`ringmaster --version: ${median(cliTimes).toFixed(0)} ms (whole process)`)
console.log(
  `npm pack: ${(packed[0]!.size / 1024).toFixed(1)} kB tarball (target ≤ 1024), ${(packed[0]!.unpackedSize / 1024).toFixed(1)} kB unpacked, ${
    packed[0]!.entryCount
  } files`
)
fs.rmSync(work, { recursive: true, force: true })
