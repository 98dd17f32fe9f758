/**
 * The layers of src/, lowest first. Each folder may import only from the
 * folders listed before it (and from itself); `observability` is a foundation
 * every layer may use. `http` and `agents` stand side by side: neither imports
 * the other. The entry files (src/index.ts, sqlite.ts, postgres.ts, http.ts,
 * server.ts, service.ts) only re-export, so no rule applies to them.
 */
const layers = [
  { name: "domain", may: [] },
  { name: "ledger", may: ["domain"] },
  { name: "escrow", may: ["domain", "ledger"] },
  { name: "settlement", may: ["domain", "ledger", "escrow"] },
  { name: "http", may: ["domain", "ledger", "escrow", "settlement"] },
  { name: "agents", may: ["domain", "ledger", "escrow", "settlement"] },
  { name: "client", may: ["domain", "ledger", "escrow", "settlement", "http", "agents"] },
  { name: "service", may: ["domain", "ledger", "escrow", "settlement", "http", "agents", "client"] },
  { name: "cli", may: ["domain", "ledger", "escrow", "settlement", "http", "agents", "client", "service"] }
]

const foundations = ["observability"]

const layerRules = layers.map(({ name, may }) => ({
  name: `layer-${name}`,
  comment: `src/${name}/ imports only from ${may.length === 0 ? "nothing of ours" : may.join(", ")}` +
    (name === "domain" ? "" : ` (and ${foundations.join(", ")})`),
  severity: "error",
  from: { path: `^src/${name}/` },
  to: {
    path: "^src/",
    pathNot: [
      `^src/(${[name, ...may, ...(name === "domain" ? [] : foundations)].join("|")})/`
    ]
  }
}))

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "layer-observability",
      comment: "src/observability/ is a foundation: it imports nothing of ours",
      severity: "error",
      from: { path: "^src/observability/" },
      to: { path: "^src/", pathNot: "^src/observability/" }
    },
    {
      name: "http-no-sql",
      comment: "src/http/ is transport only: SQL lives in the ledger and behind the settlement's stores",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: ["(^|/)node_modules/(@effect/sql[^/]*|better-sqlite3|pg)/", "^src/ledger/sql/"] }
    },
    {
      name: "ledger-sql-inside",
      comment: "src/ledger/sql/ is the SQL ledger's inside: the ledger composes it, the settlement's SQL stores and the service's journal (which shares its group commit and transactions) build on it; nothing else reaches in",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/ledger/", "^src/settlement/sql/", "^src/service/Journal\\.ts$"] },
      to: { path: "^src/ledger/sql/" }
    },
    {
      name: "settlement-sql-inside",
      comment: "src/settlement/sql/ implements the settlement's store ports: only the settlement composes it; everything above asks for ApiKeys / PaymentTokens",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/settlement/" },
      to: { path: "^src/settlement/sql/" }
    },
    {
      name: "no-circular",
      comment: "no import cycles inside src/ that run at load time (a cycle of `import type` only erases at compile time)",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      extensions: [".ts", ".js", ".mjs", ".cjs", ".json"]
    }
  }
}
