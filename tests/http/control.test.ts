/**
 * Control commands over REST, on the app in-process (memory log): a command
 * reaches only the workflow of the agent it was sent to, another agent's task
 * is refused like a read, and idempotency keys never collide across subjects,
 * agents or commands.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Redacted } from "effect"
import { step, taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

describe("control commands per agent", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp({ authJwtSecret: Redacted.make(SECRET) })
  })
  afterAll(() => gateway.close())

  const command = async (token: string, agentId: string, taskId: string, kind: string, key?: string) => {
    const response = await gateway.request(`${taskPath(agentId, taskId)}/${kind}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, ...(key === undefined ? {} : { "idempotency-key": key }) }
    })
    return { status: response.status, body: (await response.json()) as { command_id?: string; code?: string } }
  }

  it("refuses a command for a task stored under another agent with 404", async () => {
    const taskId = uniqueTask()
    const publisher = await hsToken({ publish: ["ab/*"] })
    const stored = await gateway.request(`${taskPath("ab", taskId)}/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${publisher}`, "content-type": "application/json" },
      body: JSON.stringify(step(1))
    })
    expect(stored.status).toBe(201)
    const bob = await hsToken({ control: ["bob/*"] })
    expect(await command(bob, "bob", taskId, "cancel")).toEqual({ status: 404, body: expect.objectContaining({ code: "not_found" }) })
  })

  it("never hands a command sent before the task existed to the workflow of another agent that starts it", async () => {
    const taskId = uniqueTask()
    const bob = await hsToken({ control: ["bob/*"] })
    const bobs = await command(bob, "bob", taskId, "cancel")
    expect(bobs.status).toBe(202)
    // Agent ab starts the task and reads its commands; its own pause is the sentinel.
    const workflow = gateway.publisher
    await workflow.publish({ agentId: "ab", taskId }, "WorkflowStarted", {})
    const ab = await hsToken({ control: ["ab/*"] })
    const own = await command(ab, "ab", taskId, "pause")
    const commands = workflow.commands({ agentId: "ab", taskId })
    const first = (await commands.next()).value
    expect(first).toMatchObject({ commandId: own.body.command_id, command: "pause", agentId: "ab" })
    // And after it, bob's second command is passed over too: the next one is ab's resume.
    expect((await command(bob, "bob", taskId, "cancel")).status).toBe(404)
    const resumed = await command(ab, "ab", taskId, "resume")
    expect((await commands.next()).value).toMatchObject({ commandId: resumed.body.command_id, command: "resume" })
    await commands.return!(undefined)
  })

  it("keeps idempotency keys apart per subject, agent and command, whatever characters they hold", async () => {
    const taskId = uniqueTask()
    const both = await hsToken({ control: ["*/*"] })
    const forBob = await command(both, "bob", taskId, "cancel", "k")
    const forAb = await command(both, "ab", taskId, "cancel", "k")
    expect(forBob.status).toBe(202)
    expect(forAb.status).toBe(202)
    expect(forAb.body.command_id).not.toBe(forBob.body.command_id)
    expect((await command(both, "ab", taskId, "cancel", "k")).body.command_id).toBe(forAb.body.command_id)
    // Joined with a separator, ("s", pause, "cancel:x") and ("s:pause", cancel, "x") would be one key.
    const s = await hsToken({ control: ["*/*"] }, { sub: "s" })
    const sPause = await hsToken({ control: ["*/*"] }, { sub: "s:pause" })
    const first = await command(s, "ab", taskId, "pause", "cancel:x")
    const second = await command(sPause, "ab", taskId, "cancel", "x")
    expect(second.status).toBe(202)
    expect(second.body.command_id).not.toBe(first.body.command_id)
  })
})
