/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. `npm run bench:http --
 * --profile DIR`): self time by function and by package, the share the process
 * spent idle, in GC and in native code, and time by the nearest caller outside
 * Effect's runtime.
 *
 *   tsx bench/profile.ts FILE.cpuprofile [--top N]
 */
import * as fs from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const file = process.argv[2]
if (file === undefined) throw new Error("usage: tsx bench/profile.ts FILE.cpuprofile [--top N]")
const topIndex = process.argv.indexOf("--top")
const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 30
// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on("error", () => process.exit(0))
const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parentOf = new Map<number, number>()
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id)
const stackOf = (id: number): Array<ProfileNode> => {
  const stack: Array<ProfileNode> = []
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) stack.push(byId.get(at)!)
  return stack
}
// The profiler's own stop call (node:inspector) is not the server's work.
const isProfilerItself = (id: number) => stackOf(id).some((n) => n.callFrame.url === "node:inspector")
const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => {
  if (!isProfilerItself(id)) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
})
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)

/** `node_modules/@effect/platform/dist/esm/Foo.js` → `@effect/platform`; our files by folder. */
const packageOf = (url: string): string => {
  if (url === "") return "(native/vm)"
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/")
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith("node:")) return "node (internal)"
  const src = url.indexOf("/src/")
  if (src >= 0) return "ringmaster " + url.slice(src + 1).split("/").slice(0, 2).join("/")
  return url.split("/").slice(-2).join("/")
}

const fileOf = (url: string) => {
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) return url.slice(nm + "node_modules/".length).replace("/dist/esm/", "/").replace("/dist/cjs/", "/")
  const src = url.indexOf("/src/")
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, "")
}

const fnKey = (n: ProfileNode) => {
  const name = n.callFrame.functionName || "(anonymous)"
  return n.callFrame.url === "" ? name : `${name}  ${fileOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
}

const sum = (key: (n: ProfileNode) => string) => {
  const out = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const k = key(byId.get(id)!)
    out.set(k, (out.get(k) ?? 0) + us)
  }
  return [...out].sort((a, b) => b[1] - a[1])
}

const pct = (us: number) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`

console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled`)
const special = sum((n) => (["(idle)", "(garbage collector)", "(program)"].includes(n.callFrame.functionName) ? n.callFrame.functionName : "busy"))
for (const [k, us] of special) console.log(`  ${k.padEnd(22)} ${ms(us)} ${pct(us)}`)

console.log(`\nself time by package`)
for (const [k, us] of sum((n) => packageOf(n.callFrame.url)).slice(0, top)) console.log(`  ${pct(us)} ${ms(us)}  ${k}`)

console.log(`\nself time by function (top ${top})`)
for (const [k, us] of sum(fnKey).slice(0, top)) console.log(`  ${pct(us)} ${ms(us)}  ${k}`)

// Inclusive time: the share of samples with at least one frame of the package on the stack.
const inclusive = new Map<string, number>()
for (const [id, us] of selfUs) {
  for (const pkg of new Set(stackOf(id).map((n) => packageOf(n.callFrame.url)))) inclusive.set(pkg, (inclusive.get(pkg) ?? 0) + us)
}
console.log(`\ninclusive time by package (a sample counts for every package on its stack)`)
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)} ${ms(us)}  ${k}`)

// Effect's interpreter spreads a program's cost over its own run loop, context and
// fiber-ref functions, so self time names the runtime, not the work. Charging each
// sample to the nearest frame on its stack that is not the runtime names the
// continuation (platform code, our handlers, a Node callback) that made it run.
const runtimeFile =
  /node_modules\/effect\/dist\/(esm|cjs)\/(internal\/(fiberRuntime|core|core-effect|context|fiberRefs|fiberRefs\/patch|runtime|fiberScope|effectable|tracer|fiberId|runtimeFlags|runtimeFlagsPatch|option|either|cause|executionStrategy|stack\/.*)|Hash|Equal|Function|Predicate|Scheduler|Utils|Context|Effectable|Option|Either|FiberRefs|Effect|Chunk|Array)\.js$/
const nearest = new Map<string, number>()
for (const [id, us] of selfUs) {
  const leaf = byId.get(id)!
  let key = ["(idle)", "(garbage collector)", "(program)"].includes(leaf.callFrame.functionName) ? leaf.callFrame.functionName : "(Effect runtime only)"
  if (key === "(Effect runtime only)") {
    for (const n of stackOf(id)) {
      if (n.callFrame.url === "" || runtimeFile.test(n.callFrame.url)) continue
      key = fnKey(n)
      break
    }
  }
  nearest.set(key, (nearest.get(key) ?? 0) + us)
}
console.log(`\ntime by nearest caller outside Effect's runtime (top ${top})`)
for (const [k, us] of [...nearest].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)} ${ms(us)}  ${k}`)
