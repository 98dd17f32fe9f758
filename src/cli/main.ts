#!/usr/bin/env node
/**
 * The `ringmaster` binary. `--version` is answered before the command tree loads:
 * loading Effect and @effect/cli alone takes a second or more.
 */
import { VERSION } from "./version.js"

if (process.argv.length === 3 && process.argv[2] === "--version") {
  process.stdout.write(`${VERSION}\n`)
} else {
  await import("./run.js")
}
