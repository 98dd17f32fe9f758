#!/usr/bin/env node
/**
 * `npm start` and the Docker image's command (`node dist/service/main.js`): the
 * orchestrator service with the default pipeline, configured from the environment.
 * See Launch.ts for exit codes and `RINGMASTER_FLY_TOML`, Service.ts for what runs.
 */
import { runMain } from "./Launch.js"

runMain()
