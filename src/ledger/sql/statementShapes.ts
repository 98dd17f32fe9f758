/**
 * Statement shapes. A multi-row INSERT or an IN list of a new length is new SQL text,
 * so it misses the prepared-statement cache and is parsed again; batches vary in size
 * all the time. Splitting rows into power-of-two chunks (42 rows → 32 + 8 + 2) and
 * padding IN lists to a power of two keeps the number of distinct statements small
 * (a few per table), so they stay prepared. 256 rows stay far below SQLite's 32,766
 * and PostgreSQL's 65,535 parameters.
 */
export const MAX_ROWS_PER_STATEMENT = 256
export const chunks = <A>(items: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  let i = 0
  while (i < items.length) {
    let size = MAX_ROWS_PER_STATEMENT
    while (size > items.length - i) size >>= 1
    out.push(items.slice(i, i + size))
    i += size
  }
  return out
}
/** Repeats the last key up to the next power of two: same rows, one of few statement shapes. */
export const padded = <A>(keys: ReadonlyArray<A>): ReadonlyArray<A> => {
  let size = 1
  while (size < keys.length) size <<= 1
  return size === keys.length ? keys : [...keys, ...Array.from({ length: size - keys.length }, () => keys[keys.length - 1]!)]
}
