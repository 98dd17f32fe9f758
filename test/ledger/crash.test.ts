/**
 * A process doing escrow work is SIGKILLed mid-run (no finalizers, no flush). Reopening
 * its database must show only whole commands: every escrow's postings match its state,
 * every balance equals its postings, and the total is conserved.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"

const runUntilKilled = (dataDir: string, killAfterProgress: number) =>
  new Promise<{ progress: number; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "crash-worker.ts")], {
      env: { ...process.env, DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let progress = 0
    let stderr = ""
    const guard = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`worker made no progress in time: ${stderr}`))
    }, 60_000)
    child.stdout.on("data", (chunk: Buffer) => {
      for (const match of chunk.toString().matchAll(/progress (\d+)/g)) progress = Number(match[1])
      if (progress >= killAfterProgress) child.kill("SIGKILL")
    })
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("exit", (_code, signal) => {
      clearTimeout(guard)
      resolve({ progress, signal })
    })
  })

describe("crash safety", () => {
  it.live("a SIGKILL mid-run leaves no half-applied escrow", () =>
    Effect.gen(function*() {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-crash-"))
      const run = yield* Effect.promise(() => runUntilKilled(dataDir, 600))
      expect(run.signal).toBe("SIGKILL")
      expect(run.progress).toBeGreaterThanOrEqual(600)
      const report = yield* Effect.flatMap(Ledger, (ledger) => ledger.verify).pipe(
        Effect.provide(SqlLedger.layerSqliteWith({ dataDir }))
      )
      expect(report.violations).toEqual([])
      expect(report.escrows).toBeGreaterThanOrEqual(600)
      // And the ledger keeps working on the recovered file.
      const again = yield* Effect.promise(() => runUntilKilled(dataDir, 200))
      expect(again.signal).toBe("SIGKILL")
      const after = yield* Effect.flatMap(Ledger, (ledger) => ledger.verify).pipe(
        Effect.provide(SqlLedger.layerSqliteWith({ dataDir }))
      )
      expect(after.violations).toEqual([])
      expect(after.escrows).toBeGreaterThan(report.escrows)
    }), 120_000)
})
