/**
 * The entry point of the service bundle (`dist/bundle/service.cjs`, scripts/build-service.ts):
 * the service's modules, evaluated but not started. The code-cache launcher calls
 * `runMain` right after evaluating them; the startup snapshot evaluates them at build
 * time and calls `afterSnapshotRestore`, then `runMain`, in each process it starts.
 */
export { runMain } from "../src/service/Launch.js"
export { afterSnapshotRestore } from "./snapshot-restore.js"
