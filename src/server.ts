/**
 * ringmaster/server: the settlement server (the REST API on a ledger), its MCP tools
 * and the dashboard.
 */
export { Settlement } from "./settlement/Settlement.js"
export type { CreateEscrowInput, SettlementShape } from "./settlement/Settlement.js"
export { SettlementConfig } from "./settlement/SettlementConfig.js"
export * as SettlementSettings from "./settlement/SettlementConfig.js"
export { ApiKeys } from "./settlement/ApiKeys.js"
export * as SettlementServer from "./http/server.js"
export * as Mcp from "./http/mcp/Mcp.js"
export { SettlementToolkit } from "./http/mcp/SettlementTools.js"
export { McpCredential } from "./http/mcp/McpCredential.js"
export * as DashboardHttp from "./http/dashboard/http.js"
export { DashboardConfig } from "./http/dashboard/DashboardConfig.js"
export { DashboardApi } from "./http/dashboard/Api.js"
