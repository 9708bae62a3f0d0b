/**
 * The EventLog contract (SPEC §2, §5): append, read, head, the calls in flight
 * and ping — one suite, run in-process against the memory layer and the Redis
 * layer on a real redis-server and a real Redis Cluster.
 */
import { expect, it } from "bun:test"
import { Effect, Exit, Result, Scope } from "effect"
import { parseEventId, ZeroId } from "../../src/events/envelope.ts"
import { describeEachLog, draft, HISTORY_MAX, recorder, run, step } from "../support/logContract.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"

describeEachLog("EventLog contract", ({ log, feed }) => {
  const task = (taskId = uniqueTask()) => ({ agentId: "agent-c", taskId })

  it("assigns strictly increasing ids of the form <ms>-<seq>", async () => {
    const t = task()
    const ids = [...(await run(log().append(t, [step(1), step(2), step(3)]))), ...(await run(log().append(t, [step(4)])))]
    expect(ids.every((id) => /^\d+-\d+$/.test(id!))).toBe(true)
    const parsed = ids.map((id) => parseEventId(id!)!)
    for (let i = 1; i < parsed.length; i++) {
      expect(parsed[i].ms > parsed[i - 1].ms || (parsed[i].ms === parsed[i - 1].ms && parsed[i].seq > parsed[i - 1].seq)).toBe(true)
    }
  })

  it("reads events strictly after an id, oldest first, at most limit", async () => {
    const t = task()
    const ids = await run(log().append(t, [step(1), step(2), step(3), step(4)]))
    const all = await run(log().read(t.taskId, ZeroId, 100))
    expect(all.map((event) => event.id ?? null)).toEqual([...ids])
    expect(all[0].envelope).toMatchObject({ type: "WorkflowStepStarted", agentId: "agent-c", taskId: t.taskId, data: { step: 1 } })
    const after = await run(log().read(t.taskId, parseEventId(ids[1]!)!, 1))
    expect(after.map((event) => event.id ?? null)).toEqual([ids[2]])
    expect(await run(log().read(uniqueTask(), ZeroId, 10))).toEqual([])
  })

  it("keeps an event's data exactly as sent, extra fields included", async () => {
    const t = task()
    const data = { model: "m", extra: { nested: [1, "two", null] }, unicode: "é\n\u2028" }
    await run(log().append(t, [draft("WorkflowLLMCallStarted", data)]))
    const [event] = await run(log().read(t.taskId, ZeroId, 1))
    expect(event.data).toEqual(data)
    expect(JSON.parse(event.json).data).toEqual(data)
    expect(event.dataJson.includes("\n")).toBe(false)
  })

  it("stores nothing for an ephemeral event but delivers it live, without an id", async () => {
    const t = task()
    const seen = recorder()
    const listening = Effect.runSync(Scope.make())
    await run(Scope.provide(feed().listen(t.taskId, seen.listener), listening))
    const ids = await run(log().append(t, [draft("WorkflowLLMCallChunk", { chunk: "a", chunk_index: 0 }), step(1)]))
    expect(ids[0]).toBeNull()
    expect(await run(log().read(t.taskId, ZeroId, 10))).toHaveLength(1)
    await eventually(() => seen.events.length === 2)
    expect(seen.events[0].id).toBeUndefined()
    expect(seen.events[0].type).toBe("WorkflowLLMCallChunk")
    await run(Scope.close(listening, Exit.void))
  })

  it("keeps an LLM call's chunks until its completion, names the open call on chunks, and stores the text as the completion's content", async () => {
    const t = task()
    const seen = recorder()
    const listening = Effect.runSync(Scope.make())
    await run(Scope.provide(feed().listen(t.taskId, seen.listener), listening))
    const [started] = await run(log().append(t, [draft("WorkflowLLMCallStarted", { model: "m" })]))
    const chunk = (n: number) => draft("WorkflowLLMCallChunk", { chunk: `c${n};`, chunk_index: n })
    await run(log().append(t, [chunk(0), chunk(1)]))
    // A repeated index is passed on but not kept twice.
    await run(log().append(t, [chunk(1), chunk(2)]))
    expect(await run(log().inflight(t.taskId))).toEqual([
      { callId: started!, started: parseEventId(started!), model: "m", text: "c0;c1;c2;", index: 2 }
    ])
    // The head says so: a client opening now reads the calls in flight.
    expect((await run(log().head(t.taskId))).calls).toBe(true)
    await run(log().append(t, [draft("WorkflowLLMCallCompleted", { model: "m", usage: { tokens: 3 } })]))
    expect(await run(log().inflight(t.taskId))).toEqual([])
    expect((await run(log().head(t.taskId))).calls).toBe(false)
    await eventually(() => seen.events.length === 6)
    expect(seen.events.slice(1, 5).map((event) => event.data.call_id)).toEqual([started, started, started, started])
    const [, completed] = await run(log().read(t.taskId, ZeroId, 10))
    expect(completed.data).toEqual({ call_id: started, content: "c0;c1;c2;", model: "m", usage: { tokens: 3 } })
    expect(seen.events[5].data).toEqual(completed.data)
    await run(Scope.close(listening, Exit.void))
  })

  it("keeps a long answer of 2500 chunks whole", async () => {
    const t = task()
    await run(log().append(t, [draft("WorkflowLLMCallStarted", { model: "m", call_id: "long" })]))
    for (let first = 0; first < 2500; first += 500) {
      await run(log().append(t, Array.from({ length: 500 }, (_, i) => draft("WorkflowLLMCallChunk", { chunk: `${first + i},`, chunk_index: first + i }))))
    }
    const expected = Array.from({ length: 2500 }, (_, i) => `${i},`).join("")
    expect((await run(log().inflight(t.taskId)))[0]).toMatchObject({ callId: "long", text: expected, index: 2499 })
    await run(log().append(t, [draft("WorkflowLLMCallCompleted", { model: "m", call_id: "long" })]))
    const [, completed] = await run(log().read(t.taskId, ZeroId, 10))
    expect(completed.data.content).toBe(expected)
    expect(await run(log().inflight(t.taskId))).toEqual([])
  })

  it("files chunks under their call_id, forgets every call at the task's end, and after INFLIGHT_TTL_S", async () => {
    const t = task()
    await run(log().append(t, [
      draft("WorkflowLLMCallStarted", { model: "m", call_id: "a" }),
      draft("WorkflowLLMCallStarted", { model: "m", call_id: "b" }),
      draft("WorkflowLLMCallChunk", { chunk: "a0", chunk_index: 0, call_id: "a" }),
      draft("WorkflowLLMCallChunk", { chunk: "b0", chunk_index: 0 })
    ]))
    expect((await run(log().inflight(t.taskId))).map((call) => [call.callId, call.text])).toEqual([["a", "a0"], ["b", "b0"]])
    await run(log().append(t, [draft("WorkflowFailed", { error: "boom" })]))
    expect(await run(log().inflight(t.taskId))).toEqual([])
    const u = task()
    await run(log().append(u, [draft("WorkflowLLMCallStarted", { model: "m" }), draft("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 })]))
    expect(await run(log().inflight(u.taskId))).toHaveLength(1)
    await eventually(async () => (await run(log().inflight(u.taskId))).length === 0, 5000, "the in-flight chunks to expire")
  })

  it("returns the first id for a repeated idempotency key and appends nothing", async () => {
    const t = task()
    const [first] = await run(log().append(t, [step(1, "k1")]))
    const [again] = await run(log().append(t, [step(1, "k1")]))
    expect(again).toBe(first)
    const batch = await run(log().append(t, [step(2, "k2"), step(1, "k1")]))
    expect(batch[1]).toBe(first)
    expect(await run(log().read(t.taskId, ZeroId, 10))).toHaveLength(2)
  })

  it("rejects appends by another agent and after a terminal event, changing nothing", async () => {
    const t = task()
    await run(log().append(t, [step(1)]))
    const other = await Effect.runPromise(Effect.flip(log().append({ agentId: "agent-x", taskId: t.taskId }, [step(2)])))
    expect(other._tag).toBe("AgentMismatch")
    const early = await Effect.runPromise(Effect.flip(log().append(t, [draft("WorkflowCompleted", {}), step(3)])))
    expect(early._tag).toBe("TaskEnded")
    await run(log().append(t, [draft("WorkflowCompleted", {})]))
    const after = await Effect.runPromise(Effect.flip(log().append(t, [step(4)])))
    expect(after._tag).toBe("TaskEnded")
    expect((await run(log().read(t.taskId, ZeroId, 10))).map((event) => event.type)).toEqual([
      "WorkflowStepStarted",
      "WorkflowCompleted"
    ])
  })

  it("gives appendNow's refusals as its outcome, never as a rejection, and stores as append does", async () => {
    const t = task()
    const appended = await log().appendNow(t, [step(1), step(2)])
    expect(Result.isSuccess(appended)).toBe(true)
    const ids = Result.getOrThrow(appended)
    expect((await run(log().read(t.taskId, ZeroId, 10))).map((event) => event.id ?? null)).toEqual([...ids])
    const other = await log().appendNow({ agentId: "agent-x", taskId: t.taskId }, [step(3)])
    expect(Result.isFailure(other) && other.failure._tag).toBe("AgentMismatch")
    await log().appendNow(t, [draft("WorkflowCompleted", {})])
    const ended = await log().appendNow(t, [step(4)])
    expect(Result.isFailure(ended) && ended.failure._tag).toBe("TaskEnded")
    expect(await run(log().read(t.taskId, ZeroId, 10))).toHaveLength(3)
  })

  it("reports the head: owner, newest, oldest, and whether history was trimmed", async () => {
    const t = task()
    const empty = await run(log().head(t.taskId))
    expect(empty).toEqual({ agentId: undefined, last: undefined, first: undefined, trimmed: false, calls: false })
    const ids = await run(log().append(t, [step(1), step(2)]))
    const head = await run(log().head(t.taskId))
    expect(head.agentId).toBe("agent-c")
    expect(head.last?.id ?? null).toBe(ids[1])
    expect(head.first).toEqual(parseEventId(ids[0]!))
    expect(head.trimmed).toBe(false)
    // Redis trims whole stream nodes (MAXLEN ~), so append well past HISTORY_MAX.
    for (let i = 0; i < 3; i++) await run(log().append(t, Array.from({ length: 100 }, (_, n) => step(n))))
    const trimmed = await run(log().head(t.taskId))
    expect(trimmed.trimmed).toBe(true)
    const retained = await run(log().read(t.taskId, ZeroId, 1000))
    expect(retained.length).toBeGreaterThanOrEqual(HISTORY_MAX)
    expect(retained.length).toBeLessThan(302)
    expect(trimmed.first).toEqual(parseEventId(retained[0].id!))
  })

  it("answers ping", async () => {
    await run(log().ping)
  })
})
