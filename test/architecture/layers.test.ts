/**
 * The layers of src/ point one way (see `.dependency-cruiser.cjs`): domain ←
 * ledger ← escrow ← settlement ← http | agents ← client ← service ← cli, with
 * observability beneath them all, no SQL in http/, and no load-time cycles.
 */
import { cruise, type ICruiseResult } from "dependency-cruiser"
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options"
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

const violationsOf = async (): Promise<ReadonlyArray<string>> => {
  const cwd = process.cwd()
  // dependency-cruiser resolves the sources and the config's paths from the working directory.
  process.chdir(root)
  try {
    const options = await extractDepcruiseOptions("./.dependency-cruiser.cjs")
    const tsConfig = extractTSConfig("tsconfig.json")
    const result = await cruise(["src"], { ...options, validate: true }, {}, { tsConfig })
    const output = result.output as ICruiseResult
    return output.summary.violations.map((v) =>
      v.cycle !== undefined && v.cycle.length > 0
        ? `${v.rule.name}: ${v.from} → ${v.cycle.map((step) => step.name).join(" → ")}`
        : `${v.rule.name}: ${v.from} → ${v.to}`
    )
  } finally {
    process.chdir(cwd)
  }
}

describe("architecture", () => {
  it("each layer of src/ imports only from the layers below it", async () => {
    const violations = await violationsOf()
    expect(violations, violations.join("\n")).toEqual([])
  }, 60_000)
})
