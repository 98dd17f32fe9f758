/**
 * Bounds on the ledger's reports, shared by the queries that compute them and the
 * dashboard contract that serves them.
 */

/** Buckets in a series at most. */
export const MAX_BUCKETS = 60
