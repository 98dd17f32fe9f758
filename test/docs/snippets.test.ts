/**
 * The documentation's TypeScript compiles: every ```ts block of README.md and
 * docs/orchestrator.md is written to a file of its own inside the repository (so
 * `ringmaster` resolves through tsconfig's paths, as in the examples) and
 * type-checked with the repository's compiler options. A failure names the
 * document and the line of the block.
 *
 * A block right after `<!-- file: examples/... -->` is that file, verbatim: it must
 * equal it, so a guide cannot drift from the program its test runs.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"
import { afterAll, describe, expect, it } from "vitest"

const repo = path.resolve(import.meta.dirname, "../..")
const documents = ["README.md", "docs/orchestrator.md"]

interface Snippet {
  readonly document: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly code: string
  /** The file the block must equal, if the line before it names one. */
  readonly file: string | undefined
}

const snippetsOf = (document: string): ReadonlyArray<Snippet> => {
  const lines = fs.readFileSync(path.join(repo, document), "utf8").split("\n")
  const snippets: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue
    const end = lines.findIndex((l, j) => j > i && l.trim() === "```")
    if (end === -1) throw new Error(`${document} line ${i + 1}: a \`\`\`ts block is never closed`)
    const marker = /^<!-- file: (\S+) -->$/.exec(lines[i - 1]?.trim() ?? "")
    snippets.push({ document, line: i + 1, code: lines.slice(i + 1, end).join("\n") + "\n", file: marker?.[1] })
    i = end
  }
  return snippets
}

const snippets = documents.flatMap(snippetsOf)
const scratch = fs.mkdtempSync(path.join(repo, "test", "docs", ".snippets-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

const fileOf = (s: Snippet) => path.join(scratch, `${s.document.replace(/[/.]/g, "_")}-L${s.line}.ts`)

describe("the documentation's code", () => {
  it("has TypeScript blocks in each document", () => {
    for (const document of documents) expect(snippets.filter((s) => s.document === document).length).toBeGreaterThan(0)
  })

  it("includes example files verbatim where a block names one", () => {
    const included = snippets.filter((s) => s.file !== undefined)
    expect(included.map((s) => s.file)).toEqual(expect.arrayContaining(["examples/remote/agent-service.ts", "examples/remote/hire.ts"]))
    for (const s of included) {
      const file = path.join(repo, s.file!)
      expect(fs.existsSync(file), `${s.document} line ${s.line}: ${s.file} does not exist`).toBe(true)
      expect(s.code, `${s.document} line ${s.line} differs from ${s.file}`).toBe(fs.readFileSync(file, "utf8"))
    }
  })

  it("type-checks every ```ts block with the repository's compiler options", () => {
    const config = ts.readConfigFile(path.join(repo, "tsconfig.json"), ts.sys.readFile)
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, repo)
    // Each block is a module of its own, even one without imports, so blocks never share names.
    const compilerOptions = { ...options, noEmit: true, moduleDetection: ts.ModuleDetectionKind.Force }
    const files = new Map(snippets.map((s) => [fileOf(s), s]))
    for (const [file, s] of files) fs.writeFileSync(file, s.code)
    const program = ts.createProgram([...files.keys()], compilerOptions)
    const errors = ts.getPreEmitDiagnostics(program).flatMap((d) => {
      const s = d.file === undefined ? undefined : files.get(path.resolve(d.file.fileName))
      if (s === undefined) return d.file === undefined ? [ts.flattenDiagnosticMessageText(d.messageText, "\n")] : []
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
      // The fence is the block's line 0: its first line of code is one below it.
      return [`${s.document} line ${s.line + 1 + line} (the block at line ${s.line}): ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`]
    })
    expect(errors, errors.join("\n\n")).toEqual([])
  }, 300_000)
})
