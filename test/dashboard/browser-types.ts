/**
 * The page's view of the data API's JSON (src/http/dashboard/browser/types.ts, written
 * without the server's modules so the browser code type-checks on its own) must fit
 * what the server sends: the encoded types of src/http/dashboard/Api.ts. Checked by
 * `npm run typecheck`; a field the server renames or drops fails it here.
 */
import type { Schema } from "effect"
import type * as Api from "../../src/http/dashboard/Api.js"
import type * as Page from "../../src/http/dashboard/browser/types.js"

/** Compiles only when `Sent` is assignable to `Read`. */
type Fits<Sent extends Read, Read> = [Sent, Read]

export type ServerJsonFitsThePage = [
  Fits<Schema.Schema.Encoded<typeof Api.Session>, Page.Session>,
  Fits<Schema.Schema.Encoded<typeof Api.Overview>, Page.Overview>,
  Fits<Schema.Schema.Encoded<typeof Api.Network>, Page.Network>,
  Fits<Schema.Schema.Encoded<typeof Api.AuditPage>, Page.AuditPage>,
  Fits<Schema.Schema.Encoded<typeof Api.EscrowDetail>, Page.EscrowDetail>,
  Fits<Schema.Schema.Encoded<typeof Api.Watermark>, Page.Watermark>
]
