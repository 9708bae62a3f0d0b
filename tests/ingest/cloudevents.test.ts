/**
 * CloudEvents ingest (SPEC §10.1): the real `cloudevents` SDK's structured,
 * binary and batch messages against a gateway on a real Redis, read back over
 * SSE; then every bad attribute through `app.request()`, answered 400 naming
 * it, with nothing stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Redacted } from "effect"
import { CloudEvent, HTTP } from "cloudevents"
import { history, taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { eventFrames, openSse } from "../support/sse.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const AGENT = "agent-ce"
const SOURCE = "https://workflows.example.com/runner"

const event = (taskId: string, n: number, extra: Partial<Record<string, unknown>> = {}) =>
  new CloudEvent({
    id: `evt-${taskId}-${n}`,
    source: SOURCE,
    type: "ai.agentarea.workflow.WorkflowStepStarted",
    time: `2026-11-24T10:00:0${n}.000Z`,
    agentid: AGENT,
    taskid: taskId,
    datacontenttype: "application/json",
    data: { step: n, name: `step ${n}` },
    ...extra
  })

const post = (baseUrl: string, message: { headers: Record<string, unknown>; body: unknown }) =>
  fetch(`${baseUrl}/api/v1/cloudevents`, {
    method: "POST",
    headers: message.headers as Record<string, string>,
    body: message.body as string
  })

describe("POST /cloudevents with the cloudevents SDK [bun, redis log]", () => {
  const h = useHarness("redis")

  it("stores structured, binary and batch events on the task they name, in order, and streams them", async () => {
    const taskId = uniqueTask("ce")
    const structured = await post(h().url, HTTP.structured(event(taskId, 1)))
    expect(structured.status).toBe(201)
    const binary = await post(h().url, HTTP.binary(event(taskId, 2)))
    expect(binary.status).toBe(201)
    // The task by subject rather than extensions.
    const batch = [
      event(taskId, 3),
      new CloudEvent({ id: `done-${taskId}`, source: SOURCE, type: "WorkflowCompleted", subject: `${AGENT}/${taskId}`, data: { total_cost: 0.5 } })
    ]
    const batchResponse = await fetch(`${h().url}/api/v1/cloudevents`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(batch)
    })
    expect(batchResponse.status).toBe(201)
    const ids = ((await batchResponse.json()) as { ids: Array<string> }).ids
    expect(ids).toHaveLength(2)

    const stream = await openSse(`${h().url}${taskPath(AGENT, taskId)}/events/stream?format=envelope`)
    await stream.ended
    const received = eventFrames(stream.frames).map((frame) => JSON.parse(frame.data))
    expect(received.map((e) => [e.type, e.taskId, e.agentId, e.time, e.data])).toEqual([
      ["WorkflowStepStarted", taskId, AGENT, "2026-11-24T10:00:01.000Z", { step: 1, name: "step 1" }],
      ["WorkflowStepStarted", taskId, AGENT, "2026-11-24T10:00:02.000Z", { step: 2, name: "step 2" }],
      ["WorkflowStepStarted", taskId, AGENT, "2026-11-24T10:00:03.000Z", { step: 3, name: "step 3" }],
      ["WorkflowCompleted", taskId, AGENT, expect.any(String), { total_cost: 0.5 }]
    ])
    expect(received.at(-1).id).toBe(ids[1])
  })

  it("appends nothing for a repeated id + source, and answers with the first ids", async () => {
    const taskId = uniqueTask("ce-repeat")
    const first = await post(h().url, HTTP.structured(event(taskId, 1)))
    const firstIds = ((await first.json()) as { ids: Array<string> }).ids
    for (const message of [HTTP.structured(event(taskId, 1)), HTTP.binary(event(taskId, 1))]) {
      const again = await post(h().url, message)
      expect(again.status).toBe(201)
      expect(((await again.json()) as { ids: Array<string> }).ids).toEqual(firstIds)
    }
    // Same id from another source is another event.
    const other = await post(h().url, HTTP.structured(event(taskId, 1, { source: "urn:another-producer" })))
    expect(other.status).toBe(201)
    const stored = await history(h().url, AGENT, taskId)
    expect(stored.body.events).toHaveLength(2)
  })
})

describe("POST /cloudevents refuses bad attributes, naming them, and stores nothing [app.request]", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp()
  })
  afterAll(() => gateway.close())

  const good = (taskId: string): Record<string, unknown> => ({
    specversion: "1.0",
    id: "e-1",
    source: SOURCE,
    type: "io.example.WorkflowStepStarted",
    agentid: AGENT,
    taskid: taskId,
    data: { step: 1 }
  })

  const structured = (body: unknown, contentType = "application/cloudevents+json") =>
    gateway.request("/api/v1/cloudevents", { method: "POST", headers: { "content-type": contentType }, body: JSON.stringify(body) })

  const storedCount = async (taskId: string) => {
    const response = await gateway.request(`${taskPath(AGENT, taskId)}/events`)
    return ((await response.json()) as { events: Array<unknown> }).events.length
  }

  const without = (object: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(object).filter(([k]) => k !== key))

  const cases: ReadonlyArray<[string, (taskId: string) => unknown, string]> = [
    ["no task at all", (t) => without(without(good(t), "agentid"), "taskid"), "taskid"],
    ["taskid without agentid", (t) => without(good(t), "agentid"), "agentid"],
    ["a taskid that is not an id", (t) => ({ ...good(t), taskid: "has space" }), "taskid"],
    ["a subject that is not agent/task", (t) => ({ ...without(without(good(t), "agentid"), "taskid"), subject: t }), "subject"],
    ["an unknown type", (t) => ({ ...good(t), type: "io.example.WorkflowExploded" }), "type"],
    ["data that is an array", (t) => ({ ...good(t), data: [1, 2] }), "data"],
    ["data that is a string", (t) => ({ ...good(t), data: "text" }), "data"],
    ["binary data", (t) => ({ ...without(good(t), "data"), data_base64: "AAAA" }), "data_base64"],
    ["an empty id", (t) => ({ ...good(t), id: "" }), "id"],
    ["a numeric id", (t) => ({ ...good(t), id: 7 }), "id"],
    ["no source", (t) => without(good(t), "source"), "source"],
    ["another specversion", (t) => ({ ...good(t), specversion: "0.3" }), "specversion"],
    ["a time that is not RFC 3339", (t) => ({ ...good(t), time: "yesterday" }), "time"],
    ["an impossible date", (t) => ({ ...good(t), time: "2026-13-45T10:00:00Z" }), "time"],
    ["a payload missing a required field", (t) => ({ ...good(t), data: { name: "x" } }), "data.step"],
    ["a non-JSON datacontenttype", (t) => ({ ...good(t), datacontenttype: "text/plain" }), "datacontenttype"]
  ]

  for (const [name, body, field] of cases) {
    it(`${name} → 400 naming ${field}`, async () => {
      const taskId = uniqueTask("ce-bad")
      const response = await structured(body(taskId))
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ code: "invalid_event", field })
      expect(await storedCount(taskId)).toBe(0)
    })
  }

  it("refuses a whole batch when one event is bad, naming it by position", async () => {
    const taskId = uniqueTask("ce-batch")
    const response = await structured([good(taskId), { ...good(taskId), id: "e-2", type: "Nope" }], "application/cloudevents-batch+json")
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ code: "invalid_event", field: "[1].type" })
    expect(await storedCount(taskId)).toBe(0)
  })

  it("names the attribute in binary mode too", async () => {
    const taskId = uniqueTask("ce-binary")
    const response = await gateway.request("/api/v1/cloudevents", {
      method: "POST",
      headers: { "content-type": "application/json", "ce-specversion": "1.0", "ce-source": SOURCE, "ce-type": "WorkflowStepStarted", "ce-agentid": AGENT, "ce-taskid": taskId },
      body: JSON.stringify({ step: 1 })
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ code: "invalid_event", field: "id" })
    expect(await storedCount(taskId)).toBe(0)
  })

  it("answers 415 for a content type that is no CloudEvents mode", async () => {
    const response = await structured(good(uniqueTask()), "text/plain")
    expect(response.status).toBe(415)
    expect(await response.json()).toMatchObject({ code: "unsupported_media_type", field: "content-type" })
  })

  it("stores a good event", async () => {
    const taskId = uniqueTask("ce-good")
    const response = await structured(good(taskId))
    expect(response.status).toBe(201)
    expect(await storedCount(taskId)).toBe(1)
  })
})

describe("POST /cloudevents applies the publish scope [app.request]", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp({ authJwtSecret: Redacted.make(SECRET) })
  })
  afterAll(() => gateway.close())

  const ce = (taskId: string, id: string) => ({ specversion: "1.0", id, source: SOURCE, type: "WorkflowStarted", subject: `${AGENT}/${taskId}`, data: {} })

  it("refuses a batch with one task out of scope (403 naming it) and stores none of it", async () => {
    const token = await hsToken({ publish: [`${AGENT}/allowed-*`], subscribe: ["*/*"] })
    const allowed = uniqueTask("allowed")
    const response = await gateway.request("/api/v1/cloudevents", {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json", authorization: `Bearer ${token}` },
      body: JSON.stringify([ce(allowed, "a"), ce(uniqueTask("other"), "b")])
    })
    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ code: "forbidden", field: "[1].taskid" })
    const stored = await gateway.request(`${taskPath(AGENT, allowed)}/events`, { headers: { authorization: `Bearer ${token}` } })
    expect(((await stored.json()) as { events: Array<unknown> }).events).toHaveLength(0)
    const ok = await gateway.request("/api/v1/cloudevents", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json", authorization: `Bearer ${token}` },
      body: JSON.stringify(ce(allowed, "a"))
    })
    expect(ok.status).toBe(201)
  })

  it("answers 401 without a token", async () => {
    const response = await gateway.request("/api/v1/cloudevents", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify(ce(uniqueTask(), "a"))
    })
    expect(response.status).toBe(401)
  })
})
