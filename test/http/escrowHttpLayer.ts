/**
 * `EscrowHttp.layer` against a real settlement server, shaped for the
 * shared Escrow contract (`test/escrow/contract.ts`): a factory from ledger config
 * to a fresh `Escrow | Ledger` layer.
 *
 * The contract registers its agents on the `Ledger` and then uses one `Escrow` for
 * every party, while over HTTP each call is made with one agent's key. So the
 * `Ledger` handed to the contract issues a key for every agent it registers, and
 * the `Escrow` sends each call through an `EscrowHttp` client holding the key of
 * the party allowed to make it: the payer, or the payee for an escrow under a
 * mandate. The server runs with `payerMayCancelBeforeDeadline` (the contract's
 * cancels are the payer's, as an orchestrator's are). Everything below the test
 * glue is the production path: derived client, undici pool, REST handlers,
 * Settlement, ledger.
 */
import { Context, Effect, Layer, Redacted, Scope } from "effect"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import { Escrow, type EscrowShape } from "../../src/escrow/Escrow.js"
import * as EscrowHttp from "../../src/client/EscrowHttp.js"
import { memoryJournal } from "../../src/ledger/SettlementJournal.js"
import { ApiKeys } from "../../src/settlement/ApiKeys.js"
import * as Server from "../../src/http/server.js"
import { Ledger, type LedgerConfigShape, type LedgerShape } from "../../src/ledger/Ledger.js"

export const layerHttpAgainstServer = (config: Partial<LedgerConfigShape>): Layer.Layer<Escrow | Ledger, unknown> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const server = yield* Layer.build(
        Server.layerMemory({
          settlement: { port: 0, host: "127.0.0.1", payerMayCancelBeforeDeadline: true, agentRequestsPerSecond: 100_000 },
          ledger: config
        })
      )
      const ledger = Context.get(server, Ledger)
      const keys = Context.get(server, ApiKeys)
      const baseUrl = yield* Effect.provide(Server.baseUrl, server)
      const scope = yield* Effect.scope

      const keyOf = new Map<string, Redacted.Redacted<string>>()
      const clients = new Map<string, EscrowShape>()
      const clientFor = (wallet: WalletAddress | undefined) => {
        const key = (wallet !== undefined ? keyOf.get(wallet) : undefined) ?? keyOf.values().next().value ?? Redacted.make("pk_none")
        const id = Redacted.value(key)
        const cached = clients.get(id)
        if (cached !== undefined) return Effect.succeed(cached)
        // Each client's pool lives as long as the layer.
        return EscrowHttp.make({ baseUrl, apiKey: key }).pipe(
          Scope.extend(scope),
          Effect.tap((client) => Effect.sync(() => clients.set(id, client)))
        )
      }
      /** Who may settle this escrow over HTTP: its payer, or its payee when opened under a mandate. */
      const settlerOf = (id: EscrowId) =>
        Effect.map(Effect.either(ledger.getEscrow(id)), (found) =>
          found._tag === "Left" ? undefined : found.right.mandateId !== null ? found.right.payee : found.right.payer)

      const registering: LedgerShape = {
        ...ledger,
        registerAgent: (input) =>
          Effect.tap(ledger.registerAgent(input), (agent) =>
            Effect.map(Effect.orDie(keys.issue(agent)), (key) => keyOf.set(agent.wallet, key)))
      }
      const journal = yield* memoryJournal
      const escrow: EscrowShape = {
        create: (terms) => Effect.flatMap(clientFor(terms.mandateId !== undefined ? terms.payee : terms.payer), (c) => c.create(terms)),
        release: (id, options) => Effect.flatMap(Effect.flatMap(settlerOf(id), clientFor), (c) => c.release(id, options)),
        cancel: (id) => Effect.flatMap(Effect.flatMap(settlerOf(id), clientFor), (c) => c.cancel(id)),
        get: (id) => Effect.flatMap(Effect.flatMap(settlerOf(id), clientFor), (c) => c.get(id)),
        recordUnsettled: journal.record,
        unsettled: journal.list,
        markSettled: journal.markSettled
      }
      return Context.make(Escrow, escrow).pipe(Context.add(Ledger, registering))
    })
  )
