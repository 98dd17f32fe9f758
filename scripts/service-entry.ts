/**
 * The entry point of the service bundle (`dist/bundle/service.cjs`, scripts/build-service.ts):
 * the service's modules, evaluated but not started. The code-cache launcher calls
 * `runMain` right after evaluating them; the startup snapshot evaluates them at build
 * time and calls `afterSnapshotRestore`, then `runMain`, in each process it starts.
 */
import { DefaultServices, Random } from "effect"

export { runMain } from "../src/service/Launch.js"

/**
 * Effect seeds its default `Random` service once, when its modules are evaluated
 * (`Random.make(Math.random())` in effect's defaultServices): in a snapshot that is at
 * build time, so every process started from the blob would draw the same numbers
 * (Schedule's jitter, `Random.*`). V8 gives each process restored from a snapshot its
 * own `Math.random` state; this seeds a new default `Random` from it, as Effect does.
 * Fibers read the default services from this very context (the initial value of
 * `DefaultServices.currentServices`), so every fiber started after this sees it.
 */
export const afterSnapshotRestore = (): void => {
  DefaultServices.liveServices.unsafeMap.set(Random.Random.key, Random.make(Math.random()))
}
