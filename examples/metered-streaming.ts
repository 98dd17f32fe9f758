/**
 * Paying for what was used or delivered: a metered transcriber charges per word
 * within a locked maximum, and a streaming quote feed is paid batch by batch; the
 * consumer stops after four batches and the rest of the lock comes back.
 *
 *   npx tsx examples/metered-streaming.ts
 *
 * On the embedded SQLite ledger (`Ringmaster.local`) in a temporary directory.
 */
import { Chunk, Console, Effect, Schema, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Agent, Orchestrator, type Payment, Usdc } from "ringmaster"
import { Ringmaster } from "ringmaster/sqlite"

export const PER_WORD = Usdc.make("0.001")
export const TRANSCRIBE_MAX = Usdc.make("0.50")
export const PER_QUOTE = Usdc.make("0.02")
export const FEED_MAX = Usdc.make("0.20")

/** Locks 0.50 USDC, charges 0.001 USDC a word, is paid what it charged. */
const Transcriber = Agent.metered({
  name: "transcriber",
  input: Schema.Struct({ audio: Schema.String }),
  output: Schema.Struct({ text: Schema.String }),
  maxPrice: TRANSCRIBE_MAX,
  run: ({ audio }, task) =>
    Effect.gen(function*() {
      const words = audio.split(/\s+/).filter((w) => w.length > 0)
      yield* task.charge(Usdc.unsafeMicros(PER_WORD * BigInt(words.length)))
      return { text: words.join(" ") }
    })
})

const Quote = Schema.Struct({ symbol: Schema.String, priceCents: Schema.Int })

/** Up to ten quotes, 0.02 USDC each, paid as each is delivered. */
const QuoteFeed = Agent.streaming({
  name: "quote-feed",
  input: Schema.Struct({ symbol: Schema.String }),
  output: Quote,
  maxPrice: FEED_MAX,
  pricePerBatch: PER_QUOTE,
  run: ({ symbol }) => Stream.range(1, 10).pipe(Stream.map((i) => ({ symbol, priceCents: 10_000 + i * 7 })))
})

export interface Bill {
  readonly text: string
  readonly quotes: ReadonlyArray<typeof Quote.Type>
  readonly payments: ReadonlyArray<Payment>
}

export const program = Effect.gen(function*() {
  const transcriber = yield* Orchestrator.spawn(Transcriber)
  const feed = yield* Orchestrator.spawn(QuoteFeed)
  const { text } = yield* Orchestrator.delegate(transcriber, { audio: "escrow pays for work that arrives and nothing else" })
  const quotes = yield* Orchestrator.stream(feed, { symbol: "USDC" }).pipe(Stream.take(4), Stream.runCollect)
  return { text, quotes: Chunk.toReadonlyArray(quotes), payments: yield* Effect.flatMap(Orchestrator, (o) => o.payments()) } satisfies Bill
})

export const run = (dataDir: string) =>
  program.pipe(Effect.provide(Ringmaster.local({ dataDir, synchronous: "NORMAL", deposit: Usdc.make("2") })))

export const main = Effect.acquireUseRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-metered-"))),
  (dir) =>
    Effect.tap(run(dir), (bill) =>
      Effect.gen(function*() {
        yield* Console.log(`Transcript: ${bill.text}`)
        yield* Console.log(`Quotes received: ${bill.quotes.map((q) => q.priceCents).join(", ")}`)
        for (const p of bill.payments) {
          yield* Console.log(`  ${p.payeeName.padEnd(12)} locked ${Usdc.format(p.locked)}  paid ${Usdc.format(p.released)}  refunded ${Usdc.format(p.refunded)}`)
        }
      })),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
