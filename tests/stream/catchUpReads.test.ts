/** Catch-up reads (SPEC §8.4): shared per task, retried with backoff, stopped when nobody waits. */
import { describe, expect, it } from "bun:test"
import { Effect, Exit, Fiber, FiberSet, Scope } from "effect"
import { LogEvent, ZeroId } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { LogUnavailable } from "../../src/log/EventLog.ts"
import { backoffDelay, CATCH_UP_BACKOFF, makeCatchUpReads, READERS_PER_TURN } from "../../src/stream/catchUpReads.ts"
import { eventually } from "../support/ports.ts"

const page = [LogEvent.fromDraft(builtinRegistry, "100-1", { agentId: "a", taskId: "t" }, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", { step: 1 })]

/** A log whose reads fail `failures` times, then succeed; counts the reads that reached it. */
const flaky = (failures: number) => {
  let reads = 0
  const log = {
    read: () =>
      Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2))).pipe(
        Effect.flatMap(() => ++reads <= failures ? Effect.fail(new LogUnavailable({ message: "down" })) : Effect.succeed(page))
      ),
    head: () => Effect.die("not read in these tests"),
    inflight: () => Effect.succeed([])
  }
  return { log, reads: () => reads }
}

const fast = { baseMs: 5, capMs: 5 }

describe("catch-up reads", () => {
  it("serves 1000 readers of a task with one read per attempt, retrying until the log answers", async () => {
    const source = flaky(3)
    const reads = makeCatchUpReads(source.log, Effect.runFork, fast)
    const since = reads.now()
    const pages = await Promise.all(Array.from({ length: 1000 }, () => Effect.runPromise(reads.read("t", ZeroId, 10, since))))
    expect(source.reads()).toBe(4)
    expect(pages.every((result) => result === pages[0] && result[0] === page[0])).toBe(true)
  })

  it("lets the readers of a page go on in turns: pages further back in the log first, pages at the same place in rotation", async () => {
    // Reads answered together: page A for many readers (clients resuming at one place), and one reader
    // each of B (at the same place in the log as A, in another read) and C (further back).
    let answer = () => {}
    const answered = new Promise<void>((resolve) => (answer = resolve))
    const log = {
      read: () => Effect.promise(() => answered).pipe(Effect.as(page)),
      head: () => Effect.die("not read in this test"),
      inflight: () => Effect.succeed([])
    }
    const reads = makeCatchUpReads(log, Effect.runFork, fast)
    const since = reads.now()
    const order: Array<string> = []
    const many = 3 * READERS_PER_TURN
    const reader = (name: string, after: { ms: number; seq: number }) =>
      Effect.runPromise(Effect.tap(reads.read("t", after, 10, since), () => Effect.sync(() => void order.push(name))))
    const readers = Array.from({ length: many }, () => reader("A", { ms: 5, seq: 0 }))
    readers.push(reader("B", { ms: 5, seq: 1 }), reader("C", { ms: 1, seq: 0 }))
    answer()
    await Promise.all(readers)
    expect(order).toHaveLength(many + 2)
    // A's first turn; C, further back, goes first in the next one, then A fills that turn; then B
    // (A's turn came before B's), then the rest of A.
    expect(order.indexOf("C")).toBe(READERS_PER_TURN)
    expect(order.indexOf("B")).toBe(2 * READERS_PER_TURN)
  })

  it("lets the tasks take turns: a reader of another task goes on in the next turn, however many readers further back keep coming", async () => {
    // 40 readers far back in the log of task t (more than two turns' worth), each reading 30 pages one
    // after another, and one reader of task u: it must not wait for them.
    const log = {
      read: () => Effect.succeed(page),
      head: () => Effect.die("not read in this test"),
      inflight: () => Effect.succeed([])
    }
    const reads = makeCatchUpReads(log, Effect.runFork, fast)
    const order: Array<string> = []
    const far = Array.from({ length: 40 }, (_, reader) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let n = 0; n < 30; n++) {
          yield* reads.read("t", { ms: 1, seq: reader * 100 + n }, 10, reads.now())
          order.push("t")
        }
      })))
    // Let the far readers fill the rotation first.
    await new Promise((resolve) => setImmediate(resolve))
    const other = Effect.runPromise(Effect.tap(reads.read("u", { ms: 1000, seq: 0 }, 10, reads.now()), () => Effect.sync(() => void order.push("u"))))
    await Promise.all([...far, other])
    expect(order).toHaveLength(40 * 30 + 1)
    // Within the next turns after it asked (task t holds the turn it is in), not after the 1200 reads of task t.
    expect(order.indexOf("u")).toBeLessThan(3 * READERS_PER_TURN)
  })

  it("starts a new read for a reader that asks from after a read began", async () => {
    const source = flaky(0)
    const reads = makeCatchUpReads(source.log, Effect.runFork, fast)
    const first = Effect.runPromise(reads.read("t", ZeroId, 10, reads.now()))
    const second = Effect.runPromise(reads.read("t", ZeroId, 10, reads.now()))
    await Promise.all([first, second])
    expect(source.reads()).toBe(2)
  })

  it("stops retrying once the last reader leaves", async () => {
    const source = flaky(Infinity)
    const reads = makeCatchUpReads(source.log, Effect.runFork, fast)
    const since = reads.now()
    const fibers = Array.from({ length: 3 }, () => Effect.runFork(reads.read("t", ZeroId, 10, since)))
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(source.reads()).toBeGreaterThan(1)
    await Effect.runPromise(Effect.forEach(fibers, Fiber.interrupt))
    const stopped = source.reads()
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(source.reads()).toBeLessThanOrEqual(stopped + 1)
  })

  it("runs a shared read in its owner's scope: closing it (shutdown) stops a read still retrying", async () => {
    const source = flaky(Infinity)
    const scope = Effect.runSync(Scope.make())
    const fork = Effect.runSync(FiberSet.makeRuntime<never>().pipe(Scope.provide(scope)))
    const reads = makeCatchUpReads(source.log, fork, fast)
    const reader = Effect.runFork(reads.read("t", ZeroId, 10, reads.now()))
    await eventually(() => source.reads() > 1)
    await Effect.runPromise(Scope.close(scope, Exit.void))
    // The sentinel: the reader's join ends, as its shared read was interrupted with the scope.
    const exit = await Effect.runPromise(Fiber.await(reader))
    expect(Exit.hasInterrupts(exit)).toBe(true)
  })

  it("backs off exponentially with jitter, capped at 10 s", () => {
    const delays = Array.from({ length: 12 }, (_, i) => backoffDelay(CATCH_UP_BACKOFF, i + 1))
    expect(delays[0]).toBeGreaterThanOrEqual(200)
    expect(delays[0]).toBeLessThanOrEqual(300)
    expect(delays[3]).toBeGreaterThanOrEqual(1600)
    expect(delays[3]).toBeLessThanOrEqual(2400)
    for (const delay of delays) expect(delay).toBeLessThanOrEqual(12_000)
    expect(delays.at(-1)).toBeGreaterThanOrEqual(8000)
    // Jitter: the same attempt does not wait the same time twice in a row (almost surely).
    expect(new Set(Array.from({ length: 20 }, () => backoffDelay(CATCH_UP_BACKOFF, 5))).size).toBeGreaterThan(1)
  })

  it("retries at once when woken (the log answers again)", async () => {
    const source = flaky(1)
    const reads = makeCatchUpReads(source.log, Effect.runFork, { baseMs: 60_000, capMs: 60_000 })
    const reading = Effect.runPromise(reads.read("t", ZeroId, 10, reads.now()))
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(source.reads()).toBe(1)
    reads.wake("other-task")
    reads.wake("t")
    expect(await reading).toBe(page)
    expect(source.reads()).toBe(2)
  })
})
