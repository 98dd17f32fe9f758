/**
 * The escrow operations that move money, each as a span (`ringmaster.escrow.create`,
 * `.release`, `.cancel`) under whatever task opened or settled it. Wrapping the port
 * once where the orchestrator and `Escrow.scoped` take it covers every
 * implementation (embedded, test, remote) the same way.
 */
import { Effect } from "effect"
import { isUntraced, SpanAttribute, SpanName, withSpanWhenTraced } from "../observability/spans.js"
import type { EscrowShape } from "./Escrow.js"

/** Each port's traced form, made once (`Escrow.scoped` asks on every call); a traced port maps to itself. */
const tracedForms = new WeakMap<EscrowShape, EscrowShape>()

export const tracedEscrow = (escrow: EscrowShape): EscrowShape => {
  const known = tracedForms.get(escrow)
  if (known !== undefined) return known
  const wrapped: EscrowShape = {
    ...escrow,
    create: (terms) =>
      Effect.flatMap(isUntraced, (untraced) =>
        untraced ? escrow.create(terms) : escrow.create(terms).pipe(
          Effect.tap((created) => Effect.annotateCurrentSpan(SpanAttribute.escrowId, created.id)),
          Effect.withSpan(SpanName.escrowCreate, {
            attributes: {
              [SpanAttribute.payer]: terms.payer,
              [SpanAttribute.payee]: terms.payee,
              [SpanAttribute.priceMicros]: terms.amount.toString()
            },
            captureStackTrace: false
          })
        )),
    release: (id, options) =>
      escrow.release(id, options).pipe(
        withSpanWhenTraced(SpanName.escrowRelease, {
          attributes: options?.amount === undefined
            ? { [SpanAttribute.escrowId]: id }
            : { [SpanAttribute.escrowId]: id, [SpanAttribute.amountMicros]: options.amount.toString() },
          captureStackTrace: false
        })
      ),
    cancel: (id) =>
      escrow.cancel(id).pipe(
        withSpanWhenTraced(SpanName.escrowCancel, { attributes: { [SpanAttribute.escrowId]: id }, captureStackTrace: false })
      )
  }
  tracedForms.set(escrow, wrapped)
  tracedForms.set(wrapped, wrapped)
  return wrapped
}
