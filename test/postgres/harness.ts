/**
 * `describePg`: a vitest `describe` that runs only when the PostgreSQL probe found a
 * server, and is otherwise reported as SKIPPED with the reason in its title (never
 * silently passed). Everything else lives in `support.ts`.
 */
import { describe } from "@effect/vitest"
import { pg } from "./support.js"

export * from "./support.js"

if (!pg.available) {
  // CI sets this after starting a server: there a missing server is a failure, not a skip.
  if (process.env.RINGMASTER_REQUIRE_PG === "1") throw new Error(`RINGMASTER_REQUIRE_PG=1 but ${pg.reason}`)
  console.warn(`[postgres tests] SKIPPED: ${pg.reason}`)
}

/**
 * `describe`, skipped (and titled with the reason) when no server is reachable, so
 * the report shows e.g. "↓ PostgreSQL: contract [SKIPPED: no PostgreSQL server ...]".
 */
export const describePg = (title: string, body: () => void) =>
  describe.skipIf(!pg.available)(pg.available ? `${title} (${pg.server})` : `${title} [SKIPPED: ${pg.reason}]`, body)

