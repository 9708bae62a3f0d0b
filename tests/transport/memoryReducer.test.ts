/** After a surge of connections, once they are quiet, the runtime is asked once to give back the surge's memory. */
import { describe, expect, it } from "bun:test"
import { Connections, type StreamConnection } from "../../src/transport/connections.ts"
import { MemoryReducer, type ReducerTiming, SURGE_CONNECTIONS, SURGE_QUIET_MS } from "../../src/transport/memoryReducer.ts"

const QUIET = 200
const TIMING: ReducerTiming = { surge: 5, windowMs: 60_000, quietMs: QUIET, quietChanges: 0, minIntervalMs: 0 }

/** A reducer whose reductions are counted; `next()` resolves at the next one. */
const counted = (timing: Partial<ReducerTiming> = {}) => {
  const at: Array<number> = []
  let wake = () => {}
  const reducer = new MemoryReducer(() => {
    at.push(Date.now())
    wake()
  }, { ...TIMING, ...timing })
  const next = () => new Promise<void>((resolve) => (wake = resolve))
  return { reducer, at, next }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A surge of five, then a change every `everyMs` until the one reduction: how long after the surge it came. */
const reducedDuring = async (timing: Partial<ReducerTiming>, everyMs: number): Promise<number> => {
  const { reducer, at, next } = counted(timing)
  const reduced = next()
  for (let i = 0; i < 5; i++) reducer.changed()
  const started = Date.now()
  const changes = setInterval(() => reducer.changed(), everyMs)
  await reduced
  clearInterval(changes)
  reducer.stop()
  expect(at).toHaveLength(1)
  return at[0] - started
}

describe("MemoryReducer", () => {
  it("reduces once a surge is over, not while connections keep changing", async () => {
    const { reducer, at, next } = counted()
    const reduced = next()
    for (let i = 0; i < 5; i++) reducer.changed()
    // The surge goes on past its size, a change every QUIET / 4: no reduction in between.
    let last = Date.now()
    let longestGap = 0
    for (let i = 0; i < 8; i++) {
      await sleep(QUIET / 4)
      longestGap = Math.max(longestGap, Date.now() - last)
      reducer.changed()
      last = Date.now()
    }
    // A timer late by a whole quiet period (a loaded machine) lets it reduce in between: nothing to check then.
    if (longestGap >= QUIET) return reducer.stop()
    expect(at).toEqual([])
    await reduced
    expect(at).toHaveLength(1)
    expect(at[0] - last).toBeGreaterThanOrEqual(QUIET - 2)
    reducer.stop()
  })

  it("counts only the changes of one window: a trickle is not a surge", async () => {
    const { reducer, at, next } = counted({ windowMs: 100 })
    for (let i = 0; i < 4; i++) reducer.changed()
    // The window is over: these four and the next one are not five within it.
    await sleep(150)
    reducer.changed()
    await sleep(QUIET + 100)
    expect(at).toEqual([])
    // Five within one window are.
    const reduced = next()
    for (let i = 0; i < 5; i++) reducer.changed()
    await reduced
    expect(at).toHaveLength(1)
    reducer.stop()
  })

  it("counts the changes of the last window, wherever its slices begin", async () => {
    const { reducer, at, next } = counted({ windowMs: 2000 })
    const reduced = next()
    reducer.changed()
    await sleep(1900)
    // Five within 200 ms: a window begun at the stray change would have held four, the next one two.
    for (let i = 0; i < 3; i++) reducer.changed()
    await sleep(200)
    for (let i = 0; i < 2; i++) reducer.changed()
    await reduced
    expect(at).toHaveLength(1)
    reducer.stop()
  })

  it("counts a few changes per quiet period as quiet", async () => {
    // One change per quiet period (allowed: two) goes on for longer than the window: reduced long before its end.
    expect(await reducedDuring({ quietChanges: 2, windowMs: 60_000 }, QUIET)).toBeLessThan(5_000)
  })

  it("reduces a window after the surge when the changes never settle", async () => {
    expect(await reducedDuring({ windowMs: 600 }, QUIET / 8)).toBeGreaterThanOrEqual(600 - 2)
  })

  it("counts a new surge from the reduction on", async () => {
    const { reducer, at, next } = counted()
    let reduced = next()
    for (let i = 0; i < 5; i++) reducer.changed()
    await reduced
    for (let i = 0; i < 4; i++) reducer.changed()
    // Long past the quiet period: four changes are not a surge.
    await sleep(QUIET * 2)
    expect(at).toHaveLength(1)
    reduced = next()
    reducer.changed()
    await reduced
    expect(at).toHaveLength(2)
    reducer.stop()
  })

  it("keeps reductions at least the minimum interval apart", async () => {
    const { reducer, at, next } = counted({ minIntervalMs: 600 })
    let reduced = next()
    for (let i = 0; i < 5; i++) reducer.changed()
    await reduced
    reduced = next()
    for (let i = 0; i < 5; i++) reducer.changed()
    await reduced
    expect(at).toHaveLength(2)
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(600 - 2)
    reducer.stop()
  })

  it("asks nothing once stopped, whatever changes after", async () => {
    const { reducer, at } = counted()
    for (let i = 0; i < 5; i++) reducer.changed()
    reducer.stop()
    for (let i = 0; i < 10; i++) reducer.changed()
    await sleep(QUIET * 2)
    expect(at).toEqual([])
  })
})

describe("Connections' memory reduction", () => {
  const silent = () => {}
  const metrics = { record: silent, labelled: () => silent, init: silent } as unknown as ConstructorParameters<typeof Connections>[2]
  const connection = (i: number): StreamConnection => ({
    transport: "sse",
    subject: `client-${i}`,
    lastWrite: Date.now(),
    expiresAt: Infinity,
    isClosed: false,
    heartbeat: silent,
    close: silent
  })

  it("reduces after SURGE_CONNECTIONS opened and closed, once they are quiet", async () => {
    let reductions = 0
    let reduced = () => {}
    const done = new Promise<void>((resolve) => (reduced = resolve))
    const connections = new Connections(60_000, { maxConnections: 0, maxConnectionsPerSubject: 0 }, metrics, silent, undefined, () => {
      reductions++
      reduced()
    })
    const open = Array.from({ length: SURGE_CONNECTIONS / 2 }, (_, i) => connection(i))
    for (const c of open) connections.add(c)
    const before = Date.now()
    for (const c of open) connections.remove(c, "client_gone")
    await done
    expect(reductions).toBe(1)
    expect(Date.now() - before).toBeGreaterThanOrEqual(SURGE_QUIET_MS - 2)
    connections.stop()
  })
})
