/**
 * Runs a benchmark on the code as it ships, compiled, not as tsx runs it in development.
 *
 *   tsx bench/compiled.ts bench/ledger.ts [benchmark options...]
 *
 * Why: tsx compiles with esbuild's `keepNames`, which wraps every function and class
 * in a `__name(fn, "name")` call (an `Object.defineProperty` each time a closure is
 * created). On Effect's hot paths, where closures are made per operation, that cost
 * 15–40% of CPU per escrow lifecycle or paid task, measured side by side: the figures
 * were of tsx's transform, not of ringmaster. What ships is compiled without it: the
 * library by `tsc` (`dist/`), the service by esbuild (`dist/bundle/`).
 *
 * So the entry is bundled here by esbuild as the service is (ES2022 for Node 20, no
 * `keepNames`, no minifying), with every package left external (they are JavaScript
 * already, resolved from node_modules), written next to the entry as
 * `<name>.compiled.mjs` (git-ignored) so paths the benchmark derives from its own
 * location still hold, and run with this Node, its exit status passed on.
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import * as path from "node:path"

/** Bundles `entry` (a .ts file) and returns the path of the compiled program. */
export const compile = async (entry: string): Promise<string> => {
  const outfile = path.join(path.dirname(entry), `${path.basename(entry, ".ts")}.compiled.mjs`)
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    minify: false,
    logLevel: "warning"
  })
  return outfile
}

/** Whether this module runs as the program (tsx bench/compiled.ts …), not imported. */
const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)

if (isMain) {
  const [entry, ...args] = process.argv.slice(2)
  if (entry === undefined || !entry.endsWith(".ts")) {
    console.error("usage: tsx bench/compiled.ts bench/NAME.ts [options...]")
    process.exit(2)
  }
  const program = await compile(path.resolve(entry))
  const child = spawn(process.execPath, [program, ...args], { stdio: "inherit" })
  // Ctrl-C reaches the child through the terminal's process group; a TERM sent to this
  // process alone is passed on, so the benchmark's own cleanup (temp dirs, children) runs.
  process.on("SIGTERM", () => child.kill("SIGTERM"))
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + 15)))
}
