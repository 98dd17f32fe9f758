/**
 * The in-process measuring loop of `npm run bench` and `bench:delegate`: `operation`
 * on `concurrency` fibers until the time budget (or the operation bound) is spent.
 */
import { Effect } from "effect"

export interface Measured {
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU time of the whole process per operation: less sensitive to other load on the machine than wall time. */
  readonly cpuUsPerOperation: number
  readonly operations: number
}

export const measure = (
  concurrency: number,
  operation: Effect.Effect<unknown, unknown>,
  budget: { readonly seconds: number; readonly maxOperations?: number }
): Effect.Effect<Measured, unknown> =>
  Effect.gen(function*() {
    const maxOperations = budget.maxOperations ?? Number.POSITIVE_INFINITY
    const latencies: Array<number> = []
    const deadline = performance.now() + budget.seconds * 1000
    const worker = Effect.gen(function*() {
      while (performance.now() < deadline && latencies.length < maxOperations) {
        const start = performance.now()
        yield* operation
        latencies.push(performance.now() - start)
      }
    })
    const start = performance.now()
    const cpuStart = process.cpuUsage()
    yield* Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true })
    const cpu = process.cpuUsage(cpuStart)
    const elapsedS = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0
    return {
      perSecond: latencies.length / elapsedS,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      cpuUsPerOperation: (cpu.user + cpu.system) / Math.max(latencies.length, 1),
      operations: latencies.length
    }
  })
