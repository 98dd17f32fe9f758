/**
 * ringmaster/service: the long-lived orchestrator service (`runMain`), its pipeline,
 * identity and journal.
 */
export * as Service from "./service/Service.js"
export * as ServiceSettings from "./service/ServiceConfig.js"
export { ServiceConfig } from "./service/ServiceConfig.js"
export * as Pipeline from "./service/Pipeline.js"
export { runMain } from "./service/Launch.js"
export { Identity } from "./service/Identity.js"
export { Journal } from "./service/Journal.js"
