/**
 * The entry point of the service bundle (`dist/bundle/service.cjs`, scripts/build-service.ts):
 * the service's modules, evaluated but not started. The code-cache launcher
 * (scripts/service-launcher.ts) calls `runMain` right after evaluating them.
 */
export { runMain } from "../src/service/Launch.js"
