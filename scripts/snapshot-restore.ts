/**
 * What a program built into a startup snapshot (scripts/service-snapshot.ts) must redo
 * in each process restored from it, because its modules did it once at build time.
 * Exported by the program's entry (scripts/service-entry.ts) as `afterSnapshotRestore`.
 */
import { DefaultServices, Random } from "effect"

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
