import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Effect, Stream } from "effect"
import { redisPublisher } from "../../src/publisher/index.ts"
import { taskPath } from "../support/api.ts"
import { startHarness, uniqueTask, type Harness } from "../support/harness.ts"
import { openWs } from "../support/ws.ts"

const AGENT = "agent-1"

describe("publisher commands() [redis log]", () => {
  let current: Awaited<ReturnType<typeof startHarness>>
  const h = (): Harness => current.harness
  beforeAll(async () => {
    current = await startHarness("redis")
  })
  afterAll(() => current.stop())

  const rest = async (task: string, command: string, key?: string) => {
    const response = await fetch(`${h().url}${taskPath(AGENT, task)}/${command}`, {
      method: "POST",
      headers: key === undefined ? {} : { "idempotency-key": key }
    })
    return (await response.json()).command_id as string
  }

  it("delivers each command queued over REST and WS once, in order, across a worker restart", async () => {
    const task = uniqueTask()
    const ws = await openWs(h().url)
    const viaWs = async (command: string, ref: string) => {
      const from = ws.frames.length
      ws.send({ op: "command", ref, agentId: AGENT, taskId: task, command })
      return (await ws.next((frame) => frame.op === "ack" && frame.ref === ref, from)).command_id as string
    }
    const queued = [await rest(task, "pause", "k1"), await viaWs("resume", "r1")]
    // Repeats with the same keys are not queued again.
    expect(await rest(task, "pause", "k1")).toBe(queued[0])
    expect(await viaWs("resume", "r1")).toBe(queued[1])
    queued.push(await rest(task, "pause"))

    const first = redisPublisher({ redis: h().redis!.url })
    const worker = first.commands({ agentId: AGENT, taskId: task })
    const seen: Array<string> = []
    for (let i = 0; i < 2; i++) {
      const { value } = await worker.next()
      seen.push(value.commandId)
      await value.ack()
    }
    // The third command arrives but the worker crashes before acknowledging it.
    const unacked = (await worker.next()).value
    expect(unacked.commandId).toBe(queued[2])
    await first.close()

    queued.push(await viaWs("cancel", "r2"))
    const second = redisPublisher({ redis: h().redis!.url })
    const restarted = second.commands({ agentId: AGENT, taskId: task })
    for (let i = 0; i < 2; i++) {
      const { value } = await restarted.next()
      seen.push(value.commandId)
    }
    expect(seen).toEqual(queued)
    await restarted.return!(undefined)
    await second.close()
    ws.close()
  }, 30_000)

  it("gives the command fields as queued, and an Effect Stream variant", async () => {
    const task = uniqueTask()
    await fetch(`${h().url}${taskPath(AGENT, task)}/cancel`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ reason: "budget" })
    })
    const publisher = redisPublisher({ redis: h().redis!.url })
    const commands = await Effect.runPromise(
      publisher.commandStream({ agentId: AGENT, taskId: task }).pipe(Stream.take(1), Stream.runCollect)
    )
    expect(commands).toHaveLength(1)
    expect(commands[0]).toMatchObject({ command: "cancel", reason: "budget", source: "rest", commandId: expect.any(String) })
    expect(Number.isNaN(Date.parse(commands[0].time))).toBe(false)
    await publisher.close()
  })
})
