/**
 * The event registry is each gateway's own (SPEC §10.2): two gateways in one
 * process with different EVENT_TYPES_FILEs each accept, filter, list and end
 * tasks with their own custom types only, and a publisher SDK's types stay in
 * that publisher.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Result } from "effect"
import { parseCustomTypes } from "../../src/events/customTypes.ts"
import { httpPublisher, PublishError } from "../../src/publisher/index.ts"
import { taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { eventTypesFile } from "../support/eventTypes.ts"
import { uniqueTask } from "../support/harness.ts"

const typesOf = (types: Record<string, unknown>) => {
  const parsed = parseCustomTypes(JSON.stringify({ types }))
  if (Result.isFailure(parsed)) throw new Error(parsed.failure)
  return parsed.success
}

const ALPHA = { AlphaDone: { category: "alpha", terminal: "cancelled", payload: { type: "object" } } }
const BETA = { BetaNote: { category: "beta", payload: { type: "object", required: ["note"] } } }
const GAMMA = { GammaOnly: { category: "gamma", payload: { type: "object", required: ["g"] } } }

describe("a registry per gateway", () => {
  let alpha: TestApp
  let beta: TestApp
  let publisher: ReturnType<typeof httpPublisher>

  beforeAll(async () => {
    // The publisher loads its types first: a gateway built afterwards must not see them.
    publisher = httpPublisher({ url: "http://127.0.0.1:9", eventTypesFile: eventTypesFile({ types: GAMMA }) })
    ;[alpha, beta] = await Promise.all([startApp({ eventTypes: typesOf(ALPHA) }), startApp({ eventTypes: typesOf(BETA) })])
  })
  afterAll(async () => {
    await Promise.all([alpha.close(), beta.close(), publisher.close()])
  })

  const post = (app: TestApp, taskId: string, body: unknown) =>
    app.request(`${taskPath("agent-r", taskId)}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

  it("accepts its own custom type and refuses the other gateway's", async () => {
    const task = uniqueTask()
    expect((await post(alpha, task, { type: "AlphaDone" })).status).toBe(201)
    expect((await post(beta, task, { type: "BetaNote", data: { note: "n" } })).status).toBe(201)
    const refused = await post(beta, uniqueTask(), { type: "AlphaDone" })
    expect({ status: refused.status, body: await refused.json() }).toMatchObject({ status: 400, body: { code: "invalid_event", field: "type" } })
    expect((await post(alpha, uniqueTask(), { type: "BetaNote", data: { note: "n" } })).status).toBe(400)
  })

  it("lists and filters only its own types", async () => {
    const catalogue = async (app: TestApp) => (await (await app.request("/api/v1/event-types")).json()) as { types: Record<string, unknown>; categories: Array<string> }
    const [a, b] = await Promise.all([catalogue(alpha), catalogue(beta)])
    expect([Object.hasOwn(a.types, "AlphaDone"), Object.hasOwn(a.types, "BetaNote"), a.categories.includes("beta")]).toEqual([true, false, false])
    expect([Object.hasOwn(b.types, "BetaNote"), Object.hasOwn(b.types, "AlphaDone"), b.categories.includes("alpha")]).toEqual([true, false, false])
    const task = uniqueTask()
    expect((await alpha.request(`${taskPath("agent-r", task)}/events?types=alpha`)).status).toBe(200)
    expect((await beta.request(`${taskPath("agent-r", task)}/events?types=alpha`)).status).toBe(400)
  })

  it("ends a task by its own registry's terminal types", async () => {
    const task = uniqueTask()
    expect((await post(alpha, task, [{ type: "WorkflowStarted" }, { type: "AlphaDone" }])).status).toBe(201)
    const state = (await (await alpha.request(`${taskPath("agent-r", task)}/state`)).json()) as { status: string }
    expect(state.status).toBe("cancelled")
    expect((await post(alpha, task, { type: "WorkflowStarted" })).status).toBe(409)
  })

  it("keeps a publisher's custom types in that publisher", async () => {
    expect((await post(alpha, uniqueTask(), { type: "GammaOnly", data: { g: 1 } })).status).toBe(400)
    expect((await post(beta, uniqueTask(), { type: "GammaOnly", data: { g: 1 } })).status).toBe(400)
    // The publisher itself knows it: a bad payload fails in the workflow, before any request.
    const bad = await publisher.publish({ agentId: "agent-r", taskId: uniqueTask() }, "GammaOnly", {}).catch((error: unknown) => error)
    expect(bad).toBeInstanceOf(PublishError)
    expect((bad as PublishError).field).toBe("data.g")
  })
})
