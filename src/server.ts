/**
 * ringmaster/server: the settlement server (the REST API on a ledger), its MCP tools
 * and the dashboard.
 */
export { Settlement } from "./http/Settlement.js"
export type { CreateEscrowInput, SettlementShape } from "./http/Settlement.js"
export { SettlementConfig } from "./http/SettlementConfig.js"
export * as SettlementSettings from "./http/SettlementConfig.js"
export { ApiKeys } from "./http/ApiKeys.js"
export * as SettlementServer from "./http/server.js"
export * as Mcp from "./http/mcp/Mcp.js"
export { SettlementToolkit } from "./http/mcp/SettlementTools.js"
export { McpCredential } from "./http/mcp/McpCredential.js"
export * as DashboardHttp from "./http/dashboard/http.js"
export { DashboardConfig } from "./http/dashboard/DashboardConfig.js"
export { DashboardApi } from "./http/dashboard/Api.js"
