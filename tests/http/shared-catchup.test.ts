/**
 * Outages (SPEC §8.4): after the gateway's subscriber reconnects, every
 * client of a task catches up from the log — with one read per task, not one
 * per client. Counted on the real redis-server with INFO commandstats.
 */
import { describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { eventFrames, openSseSocket } from "../support/sse.ts"

const commandCalls = async (client: { call(...args: Array<string>): Promise<unknown> }) => {
  const text = String(await client.call("INFO", "commandstats"))
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(text)?.[1] ?? 0)
  return { xrange: calls("xrange"), xinfo: calls("xinfo\\|stream"), hgetall: calls("hgetall") }
}

describe("Catch-up after a subscriber reconnect", () => {
  const harness = useHarness("redis")

  it("costs one read per task however many clients follow it (300 clients)", async () => {
    const { url, redis } = harness()
    const agent = "agent-shared"
    const task = uniqueTask("shared")
    await postEvents(url, agent, task, step(1))
    const clients = await Promise.all(Array.from({ length: 300 }, () => openSseSocket(`${url}${taskPath(agent, task)}/events/stream`)))
    await Promise.all(clients.map((client) => client.waitFor((frames) => eventFrames(frames).length === 1)))
    await postEvents(url, agent, task, step(2))
    await Promise.all(clients.map((client) => client.waitFor((frames) => eventFrames(frames).length === 2)))

    const before = await commandCalls(redis!.client)
    expect(Number(await redis!.client.call("CLIENT", "KILL", "TYPE", "pubsub"))).toBe(1)
    await eventually(async () => /taskstream_redis_reconnects_total\S* [1-9]/.test(await (await fetch(`${url}/metrics`)).text()), 10_000, "the subscriber to reconnect")
    // Published once the catch-ups ran: every client gets it live.
    await postEvents(url, agent, task, step(3))
    await Promise.all(clients.map((client) => client.waitFor((frames) => eventFrames(frames).length === 3, 15_000)))
    const after = await commandCalls(redis!.client)

    for (const client of clients) expect(eventFrames(client.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([1, 2, 3])
    // One head, one look at the calls in flight, one history read: for all 300 clients together.
    expect(after.xinfo - before.xinfo).toBeLessThanOrEqual(2)
    expect(after.hgetall - before.hgetall).toBeLessThanOrEqual(2)
    expect(after.xrange - before.xrange).toBeLessThanOrEqual(2)
    for (const client of clients) client.close()
  }, 60_000)
})
