import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { BoundedMap } from "../../src/domain/BoundedMap.js"

/** A run of operations on small keys, so sets often hit keys already held. */
const anyOps = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("set" as const), key: fc.integer({ min: 0, max: 20 }), value: fc.integer() }),
    fc.record({ op: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 20 }) })
  ),
  { maxLength: 200 }
)

/** The reference: an unbounded array of keys in insertion order, trimmed from the front. */
const model = (capacity: number, touchOnSet: boolean, ops: ReadonlyArray<{ op: "set" | "delete"; key: number; value?: number }>) => {
  let order: Array<number> = []
  const values = new Map<number, number>()
  for (const o of ops) {
    if (o.op === "delete") {
      order = order.filter((k) => k !== o.key)
      values.delete(o.key)
      continue
    }
    if (values.has(o.key)) {
      if (touchOnSet) order = [...order.filter((k) => k !== o.key), o.key]
    } else {
      if (order.length >= capacity) values.delete(order.shift()!)
      order.push(o.key)
    }
    values.set(o.key, o.value!)
  }
  return { order, values }
}

describe("BoundedMap", () => {
  it("evicts the oldest entry when a new key arrives at capacity", () => {
    const map = new BoundedMap<string, number>(2)
    map.set("a", 1).set("b", 2).set("c", 3)
    expect([...map.keys()]).toEqual(["b", "c"])
    expect(map.has("a")).toBe(false)
    expect(map.get("c")).toBe(3)
    expect(map.size).toBe(2)
  })

  it("setting a held key evicts nothing and keeps its place unless touchOnSet", () => {
    const plain = new BoundedMap<string, number>(2)
    plain.set("a", 1).set("b", 2).set("a", 10).set("c", 3)
    expect([...plain]).toEqual([["b", 2], ["c", 3]])

    const touched = new BoundedMap<string, number>(2, { touchOnSet: true })
    touched.set("a", 1).set("b", 2).set("a", 10).set("c", 3)
    expect([...touched]).toEqual([["a", 10], ["c", 3]])
  })

  it("refuses a capacity below one", () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError)
    expect(() => new BoundedMap(1.5)).toThrow(RangeError)
  })

  it("never exceeds capacity and evicts oldest first (against a model)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.boolean(), anyOps, (capacity, touchOnSet, ops) => {
        const map = new BoundedMap<number, number>(capacity, { touchOnSet })
        for (const o of ops) {
          if (o.op === "set") map.set(o.key, o.value)
          else map.delete(o.key)
          expect(map.size).toBeLessThanOrEqual(capacity)
        }
        const expected = model(capacity, touchOnSet, ops)
        expect([...map.keys()]).toEqual(expected.order)
        for (const k of expected.order) expect(map.get(k)).toBe(expected.values.get(k))
      })
    )
  })

  it("get after set returns the value set", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), anyOps, fc.integer(), fc.integer(), (capacity, ops, key, value) => {
        const map = new BoundedMap<number, number>(capacity)
        for (const o of ops) if (o.op === "set") map.set(o.key, o.value)
        map.set(key, value)
        expect(map.get(key)).toBe(value)
        expect(map.has(key)).toBe(true)
      })
    )
  })
})
