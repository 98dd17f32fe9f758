/** Release-vs-cancel races on every ledger implementation (see `races.ts`). */
import { ledgerImplementations } from "./implementations.js"
import { registerRaceSuite } from "./races.js"

for (const [name, make] of ledgerImplementations) registerRaceSuite(name, () => make({}))
