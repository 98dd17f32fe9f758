/**
 * Group commit: writes submitted within one event-loop turn are handed, as one batch,
 * to a `commit` that runs them in one transaction; each submitter resumes with its
 * own outcome once its batch has committed.
 *
 * Why not `Queue` + a `Deferred` per write: this sits on the hottest path of every
 * paid request, and the ledger's profile showed that generic machinery costing more
 * per write than deciding the write. A plain array
 * and callbacks, touched only on the one JS thread, need no synchronisation.
 *
 * Bounded (TIGER_STYLE): at most `queueCapacity` writes wait in the queue, a submitter
 * beyond that waits for room (backpressure, as a bounded `Queue` gives); at most
 * `maxBatchSize` go into one commit. On scope close, new writes are refused with
 * `closed` and the queued ones are committed before the writer stops.
 *
 * Nothing is dropped silently: `commit` returns one outcome per write, and a commit
 * that dies or returns too few outcomes completes every write it held with that defect.
 *
 * Used by the ledger (src/ledger/SqlLedger.ts: its `commit` retries a batch and splits
 * one that keeps failing) and the service's journal (src/service/Journal.ts).
 */
import { Cause, Deferred, Effect, Exit, type Scope } from "effect"

export interface GroupCommitOptions<I, O, E> {
  /** Writes per commit at most. */
  readonly maxBatchSize: number
  /** Writes waiting in the queue at most; submitters beyond it wait for room. */
  readonly queueCapacity: number
  /** Commits a batch: one outcome per input, in order. */
  readonly commit: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>>
  /** What a write submitted after the scope began to close gets. */
  readonly closed: () => Exit.Exit<O, E>
}

interface Pending<I, O, E> {
  readonly input: I
  readonly resume: (outcome: Exit.Exit<O, E>) => void
}

/** A `submit` that queues one write and resumes once its batch committed. The writer lives as long as the scope. */
export const make = <I, O, E>(
  options: GroupCommitOptions<I, O, E>
): Effect.Effect<(input: I) => Effect.Effect<O, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxBatchSize = Math.max(1, options.maxBatchSize)
    const queueCapacity = Math.max(maxBatchSize, options.queueCapacity)
    const queued: Array<Pending<I, O, E>> = []
    /** Submitters waiting for room when the queue is full. */
    const waitingForRoom: Array<() => void> = []
    /** Set while the writer sleeps on an empty queue. */
    let wakeWriter: (() => void) | null = null
    /** Submitted and not yet resumed (queued, waiting for room, or in the batch being committed). */
    let inFlight = 0
    let closing = false
    const drained = yield* Deferred.make<void>()

    const enqueue = (pending: Pending<I, O, E>) => {
      queued.push(pending)
      if (wakeWriter !== null) {
        const wake = wakeWriter
        wakeWriter = null
        wake()
      }
    }

    // One macrotask before taking a batch: the writes of the requests already readable
    // on other sockets get queued first. Without it the writer wakes in the microtask
    // after the first write and commits it alone (better-sqlite3 is synchronous).
    const takeBatch = Effect.async<Array<Pending<I, O, E>>>((resume) => {
      let handle: NodeJS.Immediate | undefined
      const afterMacrotask = () => {
        handle = setImmediate(() => {
          handle = undefined
          const batch = queued.splice(0, maxBatchSize)
          for (let room = queueCapacity - queued.length; room > 0 && waitingForRoom.length > 0; room--) waitingForRoom.shift()!()
          resume(Effect.succeed(batch))
        })
      }
      if (queued.length > 0) afterMacrotask()
      else wakeWriter = afterMacrotask
      return Effect.sync(() => {
        wakeWriter = null
        if (handle !== undefined) clearImmediate(handle)
      })
    })

    const commitBatch = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      Effect.suspend(() => options.commit(batch.map((p) => p.input))).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) {
              const outcomes = exit.value
              batch.forEach((pending, i) =>
                pending.resume(outcomes[i] ?? Exit.die(new Error(`group commit: ${outcomes.length} outcomes for ${batch.length} writes`)))
              )
            } else {
              // The commit itself died: none of its writes may look done.
              const cause = exit.cause as Cause.Cause<never>
              for (const pending of batch) pending.resume(Exit.failCause(cause))
            }
            inFlight -= batch.length
          })
        ),
        Effect.uninterruptible
      )

    yield* takeBatch.pipe(
      Effect.flatMap((batch) =>
        Effect.zipRight(
          commitBatch(batch),
          Effect.suspend(() => (closing && inFlight === 0 ? Deferred.succeed(drained, undefined) : Effect.void))
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )
    // Added after the writer's fork, so it runs first on close: the writer commits what is queued, then stops.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closing = true
        return inFlight === 0 ? Effect.void : Deferred.await(drained)
      })
    )

    return (input: I): Effect.Effect<O, E> =>
      Effect.async<O, E>((resume) => {
        if (closing) return resume(options.closed())
        inFlight++
        const pending: Pending<I, O, E> = { input, resume }
        if (queued.length < queueCapacity) enqueue(pending)
        else waitingForRoom.push(() => enqueue(pending))
      })
  })
