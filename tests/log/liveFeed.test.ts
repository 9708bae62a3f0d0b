/**
 * The LiveFeed contract: live delivery in id order, ref-counted channels,
 * isolated listeners — run in-process against the memory layer and the Redis
 * layer on a real redis-server and a real Redis Cluster.
 */
import { expect, it } from "bun:test"
import { Effect, Exit, Scope } from "effect"
import { formatEventId, ZeroId } from "../../src/events/envelope.ts"
import type { LiveListener } from "../../src/log/LiveFeed.ts"
import { describeEachLog, recorder, run, step } from "../support/logContract.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"

describeEachLog("LiveFeed contract", ({ log, feed }) => {
  const task = (taskId = uniqueTask()) => ({ agentId: "agent-c", taskId })

  it("delivers live events to listeners in id order, ref-counts the task's channel, and stops after release", async () => {
    const t = task()
    const a = recorder()
    const b = recorder()
    const scopeA = Effect.runSync(Scope.make())
    const scopeB = Effect.runSync(Scope.make())
    const before = feed().liveTaskCount()
    await run(Scope.provide(feed().listen(t.taskId, a.listener), scopeA))
    await run(Scope.provide(feed().listen(t.taskId, b.listener), scopeB))
    expect(feed().liveTaskCount()).toBe(before + 1)
    const ids = await run(log().append(t, [step(1), step(2), step(3)]))
    await eventually(() => a.events.length === 3 && b.events.length === 3)
    expect(a.events.map((event) => event.id ?? null)).toEqual([...ids])
    await run(Scope.close(scopeA, Exit.void))
    expect(feed().liveTaskCount()).toBe(before + 1)
    await run(log().append(t, [step(4)]))
    await eventually(() => b.events.length === 4)
    expect(a.events).toHaveLength(3)
    await run(Scope.close(scopeB, Exit.void))
    expect(feed().liveTaskCount()).toBe(before)
  })

  it("hands each stored event its prev, the id of the stored event before it, beside it; a live-only one none", async () => {
    const t = task()
    const listening = recorder()
    const scope = Effect.runSync(Scope.make())
    await run(Scope.provide(feed().listen(t.taskId, listening.listener), scope))
    const [first] = await run(log().append(t, [step(1)]))
    const chunk = { type: "WorkflowLLMCallChunk", data: { chunk: "a", chunk_index: 0 }, dataJson: '{"chunk":"a","chunk_index":0}' }
    const rest = await run(log().append(t, [chunk, step(2), step(3)]))
    await eventually(() => listening.events.length === 4)
    expect(listening.prevs.map((prev) => (prev === undefined ? null : formatEventId(prev)))).toEqual(["0-0", null, first, rest[1]])
    expect(listening.events.map((event) => Object.hasOwn(event, "prev"))).toEqual([false, false, false, false])
    await run(Scope.close(scope, Exit.void))
  })

  it("isolates listeners: one that throws neither stops the others nor leaves a batch half stored", async () => {
    const t = task()
    const throwing: LiveListener = {
      onEvent: () => {
        throw new Error("a broken listener")
      },
      onGap: () => {
        throw new Error("a broken listener")
      }
    }
    const after = recorder()
    const scope = Effect.runSync(Scope.make())
    await run(Scope.provide(feed().listen(t.taskId, throwing), scope))
    await run(Scope.provide(feed().listen(t.taskId, after.listener), scope))
    const ids = await run(log().append(t, [step(1), step(2), step(3)]))
    expect(ids).toHaveLength(3)
    expect((await run(log().read(t.taskId, ZeroId, 10))).map((event) => event.id ?? null)).toEqual([...ids])
    await eventually(() => after.events.length === 3)
    expect(after.events.map((event) => event.id ?? null)).toEqual([...ids])
    await run(Scope.close(scope, Exit.void))
  })
})
