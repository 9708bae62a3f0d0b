/**
 * The index updates of one turn are coalesced per task: the coalesced list
 * leaves the index as the updates one by one would (task_index.lua's fold,
 * modelled here), whatever order and ids they come in.
 */
import { describe, expect, it } from "bun:test"
import fc from "fast-check"
import { coalesceIndexUpdates, type IndexUpdate } from "../../src/log/appendScript.ts"

type Recorded = { readonly ms: number; readonly seq: number; readonly status: string } | undefined

/** task_index.lua's status hash for one member. */
const applyScript = (recorded: Recorded, update: IndexUpdate): Recorded => {
  if (update.lastId === "") return recorded
  const [ms, seq] = update.lastId.split("-").map(Number)
  if (recorded !== undefined && (ms < recorded.ms || (ms === recorded.ms && seq <= recorded.seq))) return recorded
  const status = update.status !== "" ? update.status : recorded?.status === "paused" ? "paused" : "running"
  return { ms, seq, status }
}

const coalesced = (updates: ReadonlyArray<IndexUpdate>): Array<IndexUpdate> => {
  const out: Array<IndexUpdate> = []
  for (const update of updates) {
    const merged = out.length === 0 ? undefined : coalesceIndexUpdates(out[out.length - 1], update)
    if (merged === undefined) out.push(update)
    else out[out.length - 1] = merged
  }
  return out
}

const update = fc.record({
  member: fc.constant("agent/task"),
  at: fc.integer({ min: 0, max: 1000 }),
  lastId: fc.oneof(fc.constant(""), fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 2 })).map(([ms, seq]) => `${ms}-${seq}`)),
  status: fc.constantFrom("", "running", "paused", "completed", "failed", "cancelled")
})
const recorded: fc.Arbitrary<Recorded> = fc.option(
  fc.record({ ms: fc.integer({ min: 1, max: 4 }), seq: fc.integer({ min: 0, max: 2 }), status: fc.constantFrom("running", "paused", "completed") }),
  { nil: undefined }
)

describe("task index updates of one turn", () => {
  it("coalesced, leave the status hash as the updates one by one would", () => {
    fc.assert(
      fc.property(recorded, fc.array(update, { maxLength: 8 }), (start, updates) => {
        const oneByOne = updates.reduce(applyScript, start)
        const merged = coalesced(updates)
        expect(merged.reduce(applyScript, start)).toEqual(oneByOne)
        expect(merged.length).toBeLessThanOrEqual(Math.max(updates.length, 0))
      }),
      { numRuns: 2000 }
    )
  })

  it("keep the newest time for the index's order", () => {
    fc.assert(
      fc.property(fc.array(update, { minLength: 1, maxLength: 8 }), (updates) => {
        const merged = coalesced(updates)
        expect(Math.max(...merged.map((u) => u.at))).toBe(Math.max(...updates.map((u) => u.at)))
      })
    )
  })

  it("send one update for a run of plain appends to a task", () => {
    const plain = (n: number): IndexUpdate => ({ member: "a/t", at: n, lastId: `${n}-0`, status: "" })
    expect(coalesced([plain(1), plain(2), plain(3)])).toEqual([plain(3)])
    const paused = { ...plain(4), status: "paused" }
    expect(coalesced([plain(1), paused, plain(5)])).toEqual([paused, plain(5)])
  })
})
