#!/usr/bin/env node
/**
 * The orchestrator service with the default pipeline, configured from the
 * environment. `npm start` and the Docker image run it bundled
 * (`node dist/bundle/service.js`, built by scripts/build-service.ts).
 * See Launch.ts for exit codes and `RINGMASTER_FLY_TOML`, Service.ts for what runs.
 */
import { runMain } from "./Launch.js"

runMain()
