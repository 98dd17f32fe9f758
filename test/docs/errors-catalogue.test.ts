/**
 * docs/errors.md lists every wire error code the HTTP layers can answer with, so
 * the catalogue cannot drift from the code. The codes are read from the sources
 * that write error bodies (the settlement API, MCP, the dashboard, the paid
 * routes): `error: "<code>"`, `body("<code>", ...)` and `plain(<status>, "<code>", ...)`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { wireErrors } from "../../src/http/errors.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

const sourcesUnder = (dir: string): Array<string> =>
  fs.readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.includes("browser"))
    .map((file) => path.join(root, dir, file))

const CODE = `"([a-z]+(?:_[a-z]+)*)"`
const emitters = [
  new RegExp(`\\berror:\\s*${CODE}`, "g"),
  new RegExp(`\\berror:[^,}]*\\?\\s*${CODE}\\s*:\\s*${CODE}`, "g"),
  new RegExp(`\\bbody\\(\\s*${CODE}`, "g"),
  new RegExp(`\\bplain\\(\\s*\\d{3},\\s*${CODE}`, "g")
]

const emittedCodes = (): Set<string> => {
  const codes = new Set<string>()
  for (const file of [...sourcesUnder("src/http"), ...sourcesUnder("src/service")]) {
    const text = fs.readFileSync(file, "utf8")
    for (const pattern of emitters) {
      for (const match of text.matchAll(pattern)) for (const code of match.slice(1)) if (code !== undefined) codes.add(code)
    }
  }
  return codes
}

const catalogue = fs.readFileSync(path.join(root, "docs/errors.md"), "utf8")
/** The codes in the catalogue's table rows: a first cell holding one `code`. */
const catalogued = new Set([...catalogue.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]!))

describe("docs/errors.md", () => {
  it("lists every wire error code the HTTP layers can emit", () => {
    const codes = emittedCodes()
    // The scan itself still finds the codes (a refactor that hid them would pass vacuously).
    expect(codes.size).toBeGreaterThanOrEqual(40)
    for (const code of ["insufficient_funds", "forbidden", "payload_too_large", "shutting_down", "task_timed_out", "payment_required"]) {
      expect(codes).toContain(code)
    }
    expect([...codes].filter((code) => !catalogued.has(code)).sort()).toEqual([])
  })

  it("lists no code the HTTP layers cannot emit", () => {
    const codes = emittedCodes()
    expect([...catalogued].filter((code) => !codes.has(code)).sort()).toEqual([])
  })

  it("names every HTTP status of the settlement API's wire errors", () => {
    const statuses = wireErrors.map((wireError) => HttpApiSchema.getStatus(wireError.ast, 0))
    expect(statuses).not.toContain(0)
    for (const status of statuses) expect(catalogue).toMatch(new RegExp(`\\| ${status} \\|`))
  })
})
