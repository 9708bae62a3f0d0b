/**
 * The EventLog contract (SPEC §2, §5): one suite, run in-process against the
 * memory layer and the Redis layer on a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Effect, Exit, Layer, Scope } from "effect"
import { AppConfig } from "../../src/config.ts"
import type { EventDraft } from "../../src/events/draft.ts"
import { type LogEvent, parseEventId, ZeroId } from "../../src/events/envelope.ts"
import { EventLog, type LiveListener } from "../../src/log/EventLog.ts"
import { MemoryEventLogLayer } from "../../src/log/MemoryEventLog.ts"
import { RedisEventLogLayer } from "../../src/log/RedisEventLog.ts"
import { createClient, parseRedisUrl, type RedisTarget } from "../../src/log/redisTarget.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { CLUSTER_START_MS, startRedisCluster } from "../support/redisCluster.ts"

const HISTORY_MAX = 10
const draft = (type: EventDraft["type"], data: Record<string, unknown>, idempotencyKey?: string): EventDraft => ({
  type,
  data,
  dataJson: JSON.stringify(data),
  ...(idempotencyKey === undefined ? {} : { idempotencyKey })
})
const step = (n: number, idempotencyKey?: string): EventDraft => draft("WorkflowStepStarted", { step: n }, idempotencyKey)

const recorder = () => {
  const events: Array<LogEvent> = []
  let gaps = 0
  const listener: LiveListener = { onEvent: (event) => void events.push(event), onGap: () => void gaps++ }
  return { events, listener, gaps: () => gaps }
}

const layers = {
  memory: () => Promise.resolve({ layer: MemoryEventLogLayer, stop: async () => {} }),
  redis: async () => {
    const server: RedisServer = await startRedis()
    return { layer: RedisEventLogLayer, stop: () => server.stop(), target: parseRedisUrl(server.url) as RedisTarget }
  },
  "redis cluster": async () => {
    const cluster = await startRedisCluster()
    return { layer: RedisEventLogLayer, stop: () => cluster.stop(), target: parseRedisUrl(cluster.url) as RedisTarget }
  }
}

for (const [kind, make] of Object.entries(layers)) {
  describe(`EventLog contract [${kind}]`, () => {
    let log: EventLog["Service"]
    let scope: Scope.Closeable
    let stop: () => Promise<void>
    let target: RedisTarget | undefined

    beforeAll(async () => {
      const made = await make()
      stop = made.stop
      target = (made as { target?: RedisTarget }).target
      scope = Effect.runSync(Scope.make())
      const config = AppConfig.layerWith({
        redis: (made as { target?: RedisTarget }).target,
        historyMax: HISTORY_MAX,
        taskIndexMax: 5,
        inflightSeconds: 1
      })
      const context = await Effect.runPromise(Layer.buildWithScope(Layer.provide(made.layer, config), scope))
      log = context.mapUnsafe.get(EventLog.key) as EventLog["Service"]
    }, CLUSTER_START_MS)
    afterAll(async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await stop()
    })

    const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
    const task = (taskId = uniqueTask()) => ({ agentId: "agent-c", taskId })

    it("assigns strictly increasing ids of the form <ms>-<seq>", async () => {
      const t = task()
      const ids = [...(await run(log.append(t, [step(1), step(2), step(3)]))), ...(await run(log.append(t, [step(4)])))]
      expect(ids.every((id) => /^\d+-\d+$/.test(id!))).toBe(true)
      const parsed = ids.map((id) => parseEventId(id!)!)
      for (let i = 1; i < parsed.length; i++) {
        expect(parsed[i].ms > parsed[i - 1].ms || (parsed[i].ms === parsed[i - 1].ms && parsed[i].seq > parsed[i - 1].seq)).toBe(true)
      }
    })

    it("reads events strictly after an id, oldest first, at most limit", async () => {
      const t = task()
      const ids = await run(log.append(t, [step(1), step(2), step(3), step(4)]))
      const all = await run(log.read(t.taskId, ZeroId, 100))
      expect(all.map((event) => event.id ?? null)).toEqual([...ids])
      expect(all[0].envelope).toMatchObject({ type: "WorkflowStepStarted", agentId: "agent-c", taskId: t.taskId, data: { step: 1 } })
      const after = await run(log.read(t.taskId, parseEventId(ids[1]!)!, 1))
      expect(after.map((event) => event.id ?? null)).toEqual([ids[2]])
      expect(await run(log.read(uniqueTask(), ZeroId, 10))).toEqual([])
    })

    it("keeps an event's data exactly as sent, extra fields included", async () => {
      const t = task()
      const data = { model: "m", extra: { nested: [1, "two", null] }, unicode: "é\n\u2028" }
      await run(log.append(t, [draft("WorkflowLLMCallStarted", data)]))
      const [event] = await run(log.read(t.taskId, ZeroId, 1))
      expect(event.data).toEqual(data)
      expect(JSON.parse(event.json).data).toEqual(data)
      expect(event.dataJson.includes("\n")).toBe(false)
    })

    it("stores nothing for an ephemeral event but delivers it live, without an id", async () => {
      const t = task()
      const seen = recorder()
      const listening = Effect.runSync(Scope.make())
      await run(Scope.provide(log.listen(t.taskId, seen.listener), listening))
      const ids = await run(log.append(t, [draft("WorkflowLLMCallChunk", { chunk: "a", chunk_index: 0 }), step(1)]))
      expect(ids[0]).toBeNull()
      expect(await run(log.read(t.taskId, ZeroId, 10))).toHaveLength(1)
      await eventually(() => seen.events.length === 2)
      expect(seen.events[0].id).toBeUndefined()
      expect(seen.events[0].type).toBe("WorkflowLLMCallChunk")
      await run(Scope.close(listening, Exit.void))
    })

    it("keeps an LLM call's chunks until its completion, names the open call on chunks, and stores the text as the completion's content", async () => {
      const t = task()
      const seen = recorder()
      const listening = Effect.runSync(Scope.make())
      await run(Scope.provide(log.listen(t.taskId, seen.listener), listening))
      const [started] = await run(log.append(t, [draft("WorkflowLLMCallStarted", { model: "m" })]))
      const chunk = (n: number) => draft("WorkflowLLMCallChunk", { chunk: `c${n};`, chunk_index: n })
      await run(log.append(t, [chunk(0), chunk(1)]))
      // A repeated index is passed on but not kept twice.
      await run(log.append(t, [chunk(1), chunk(2)]))
      expect(await run(log.inflight(t.taskId))).toEqual([
        { callId: started!, started: parseEventId(started!), model: "m", text: "c0;c1;c2;", index: 2 }
      ])
      await run(log.append(t, [draft("WorkflowLLMCallCompleted", { model: "m", usage: { tokens: 3 } })]))
      expect(await run(log.inflight(t.taskId))).toEqual([])
      await eventually(() => seen.events.length === 6)
      expect(seen.events.slice(1, 5).map((event) => event.data.call_id)).toEqual([started, started, started, started])
      const [, completed] = await run(log.read(t.taskId, ZeroId, 10))
      expect(completed.data).toEqual({ call_id: started, content: "c0;c1;c2;", model: "m", usage: { tokens: 3 } })
      expect(seen.events[5].data).toEqual(completed.data)
      await run(Scope.close(listening, Exit.void))
    })

    it("keeps a long answer of 2500 chunks whole", async () => {
      const t = task()
      await run(log.append(t, [draft("WorkflowLLMCallStarted", { model: "m", call_id: "long" })]))
      for (let first = 0; first < 2500; first += 500) {
        await run(log.append(t, Array.from({ length: 500 }, (_, i) => draft("WorkflowLLMCallChunk", { chunk: `${first + i},`, chunk_index: first + i }))))
      }
      const expected = Array.from({ length: 2500 }, (_, i) => `${i},`).join("")
      expect((await run(log.inflight(t.taskId)))[0]).toMatchObject({ callId: "long", text: expected, index: 2499 })
      await run(log.append(t, [draft("WorkflowLLMCallCompleted", { model: "m", call_id: "long" })]))
      const [, completed] = await run(log.read(t.taskId, ZeroId, 10))
      expect(completed.data.content).toBe(expected)
      expect(await run(log.inflight(t.taskId))).toEqual([])
    })

    it("files chunks under their call_id, forgets every call at the task's end, and after INFLIGHT_TTL_S", async () => {
      const t = task()
      await run(log.append(t, [
        draft("WorkflowLLMCallStarted", { model: "m", call_id: "a" }),
        draft("WorkflowLLMCallStarted", { model: "m", call_id: "b" }),
        draft("WorkflowLLMCallChunk", { chunk: "a0", chunk_index: 0, call_id: "a" }),
        draft("WorkflowLLMCallChunk", { chunk: "b0", chunk_index: 0 })
      ]))
      expect((await run(log.inflight(t.taskId))).map((call) => [call.callId, call.text])).toEqual([["a", "a0"], ["b", "b0"]])
      await run(log.append(t, [draft("WorkflowFailed", { error: "boom" })]))
      expect(await run(log.inflight(t.taskId))).toEqual([])
      const u = task()
      await run(log.append(u, [draft("WorkflowLLMCallStarted", { model: "m" }), draft("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 })]))
      expect(await run(log.inflight(u.taskId))).toHaveLength(1)
      await eventually(async () => (await run(log.inflight(u.taskId))).length === 0, 5000, "the in-flight chunks to expire")
    })

    it("returns the first id for a repeated idempotency key and appends nothing", async () => {
      const t = task()
      const [first] = await run(log.append(t, [step(1, "k1")]))
      const [again] = await run(log.append(t, [step(1, "k1")]))
      expect(again).toBe(first)
      const batch = await run(log.append(t, [step(2, "k2"), step(1, "k1")]))
      expect(batch[1]).toBe(first)
      expect(await run(log.read(t.taskId, ZeroId, 10))).toHaveLength(2)
    })

    it("rejects appends by another agent and after a terminal event, changing nothing", async () => {
      const t = task()
      await run(log.append(t, [step(1)]))
      const other = await Effect.runPromise(Effect.flip(log.append({ agentId: "agent-x", taskId: t.taskId }, [step(2)])))
      expect(other._tag).toBe("AgentMismatch")
      const early = await Effect.runPromise(Effect.flip(log.append(t, [draft("WorkflowCompleted", {}), step(3)])))
      expect(early._tag).toBe("TaskEnded")
      await run(log.append(t, [draft("WorkflowCompleted", {})]))
      const after = await Effect.runPromise(Effect.flip(log.append(t, [step(4)])))
      expect(after._tag).toBe("TaskEnded")
      expect((await run(log.read(t.taskId, ZeroId, 10))).map((event) => event.type)).toEqual([
        "WorkflowStepStarted",
        "WorkflowCompleted"
      ])
    })

    it("reports the head: owner, newest, oldest, and whether history was trimmed", async () => {
      const t = task()
      const empty = await run(log.head(t.taskId))
      expect(empty).toEqual({ agentId: undefined, last: undefined, first: undefined, trimmed: false })
      const ids = await run(log.append(t, [step(1), step(2)]))
      const head = await run(log.head(t.taskId))
      expect(head.agentId).toBe("agent-c")
      expect(head.last?.id ?? null).toBe(ids[1])
      expect(head.first).toEqual(parseEventId(ids[0]!))
      expect(head.trimmed).toBe(false)
      // Redis trims whole stream nodes (MAXLEN ~), so append well past HISTORY_MAX.
      for (let i = 0; i < 3; i++) await run(log.append(t, Array.from({ length: 100 }, (_, n) => step(n))))
      const trimmed = await run(log.head(t.taskId))
      expect(trimmed.trimmed).toBe(true)
      const retained = await run(log.read(t.taskId, ZeroId, 1000))
      expect(retained.length).toBeGreaterThanOrEqual(HISTORY_MAX)
      expect(retained.length).toBeLessThan(302)
      expect(trimmed.first).toEqual(parseEventId(retained[0].id!))
    })

    it("delivers live events to listeners in id order, ref-counts the task's channel, and stops after release", async () => {
      const t = task()
      const a = recorder()
      const b = recorder()
      const scopeA = Effect.runSync(Scope.make())
      const scopeB = Effect.runSync(Scope.make())
      const before = log.liveTaskCount()
      await run(Scope.provide(log.listen(t.taskId, a.listener), scopeA))
      await run(Scope.provide(log.listen(t.taskId, b.listener), scopeB))
      expect(log.liveTaskCount()).toBe(before + 1)
      const ids = await run(log.append(t, [step(1), step(2), step(3)]))
      await eventually(() => a.events.length === 3 && b.events.length === 3)
      expect(a.events.map((event) => event.id ?? null)).toEqual([...ids])
      await run(Scope.close(scopeA, Exit.void))
      expect(log.liveTaskCount()).toBe(before + 1)
      await run(log.append(t, [step(4)]))
      await eventually(() => b.events.length === 4)
      expect(a.events).toHaveLength(3)
      await run(Scope.close(scopeB, Exit.void))
      expect(log.liveTaskCount()).toBe(before)
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
      await run(Scope.provide(log.listen(t.taskId, throwing), scope))
      await run(Scope.provide(log.listen(t.taskId, after.listener), scope))
      const ids = await run(log.append(t, [step(1), step(2), step(3)]))
      expect(ids).toHaveLength(3)
      expect((await run(log.read(t.taskId, ZeroId, 10))).map((event) => event.id ?? null)).toEqual([...ids])
      await eventually(() => after.events.length === 3)
      expect(after.events.map((event) => event.id ?? null)).toEqual([...ids])
      await run(Scope.close(scope, Exit.void))
    })

    it("lists recently active tasks newest first, by agent, with their status, bounded by TASK_INDEX_MAX", async () => {
      const first = { agentId: "agent-list", taskId: uniqueTask("list") }
      const second = { agentId: "agent-list", taskId: uniqueTask("list") }
      const foreign = { agentId: "agent-else", taskId: uniqueTask("list") }
      await run(log.append(first, [step(1)]))
      await Bun.sleep(5)
      await run(log.append(foreign, [step(1)]))
      await Bun.sleep(5)
      await run(log.append(second, [step(1), draft("WorkflowFailed", { error: "x" })]))
      const mine = await run(log.tasks("agent-list", 10))
      expect(mine.map((summary) => [summary.taskId, summary.status])).toEqual([
        [second.taskId, "failed"],
        [first.taskId, "running"]
      ])
      const all = await run(log.tasks(undefined, 100))
      expect(all.length).toBeLessThanOrEqual(5)
      expect(all[0].taskId).toBe(second.taskId)
      expect(Number.isNaN(Date.parse(all[0].lastEventAt))).toBe(false)
    })

    it("keeps each indexed task's status: paused until resumed, ended by its terminal event, never put back by a replayed append", async () => {
      const task = { agentId: "agent-status", taskId: uniqueTask("status") }
      const statusNow = async () => (await run(log.tasks("agent-status", 5))).find((summary) => summary.taskId === task.taskId)?.status
      await run(log.append(task, [step(1)]))
      expect(await statusNow()).toBe("running")
      await run(log.append(task, [draft("WorkflowPaused", { reason: "user" }, "pause-1")]))
      expect(await statusNow()).toBe("paused")
      await run(log.append(task, [step(2), draft("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 })]))
      expect(await statusNow()).toBe("paused")
      await run(log.append(task, [draft("WorkflowResumed", {})]))
      expect(await statusNow()).toBe("running")
      // A retry of the old pause returns its first id and must not pause the task again.
      await run(log.append(task, [draft("WorkflowPaused", { reason: "user" }, "pause-1")]))
      expect(await statusNow()).toBe("running")
      await run(log.append(task, [draft("WorkflowCancelled", { reason: "stop" })]))
      expect(await statusNow()).toBe("cancelled")
    })

    if (kind !== "memory") {
      it("keeps the status hash to the tasks the index keeps (task_index.lua trims both)", async () => {
        for (let i = 0; i < 8; i++) await run(log.append({ agentId: "agent-trim", taskId: uniqueTask("trim") }, [step(1)]))
        const redis = createClient(target!, { failFast: false })
        try {
          const indexed = await redis.zrange("ts:tasks", "0", "-1")
          expect(indexed).toHaveLength(5)
          expect((await redis.hkeys("{ts:tasks}:status")).sort()).toEqual([...indexed].sort())
        } finally {
          redis.disconnect()
        }
      })
    }

    it("answers ping", async () => {
      await run(log.ping)
    })
  })
}
