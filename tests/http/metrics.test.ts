/** `GET /metrics` (SPEC §6): the figures move with the traffic the test drives. */
import { describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const scrape = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text()
  const value = (series: string) => {
    const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `))
    return line === undefined ? 0 : Number(line.slice(series.length + 1))
  }
  return { text, value }
}

describe("Prometheus metrics", () => {
  const harness = useHarness("redis")

  it("counts connections, subscriptions, live channels, deliveries, lag and subscriber reconnects", async () => {
    const { url, redis } = harness()
    const before = await scrape(url)
    expect(before.text).toContain("# TYPE taskstream_events_delivered_total counter")
    const task = uniqueTask()
    const path = `${url}${taskPath("agent-m", task)}/events/stream`
    const streams = [await openSse(path), await openSse(path)]
    await postEvents(url, "agent-m", task, [step(1), step(2), step(3), step(4), step(5)])
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => eventFrames(frames).length === 5)))
    const during = await scrape(url)
    expect(during.value('taskstream_connections{transport="sse"}')).toBe(2)
    expect(during.value("taskstream_subscriptions")).toBe(2)
    expect(during.value("taskstream_live_channels")).toBe(1)
    expect(during.value('taskstream_events_delivered_total{transport="sse"}') - before.value('taskstream_events_delivered_total{transport="sse"}')).toBe(10)
    expect(during.value("taskstream_events_appended_total") - before.value("taskstream_events_appended_total")).toBe(5)
    expect(during.value("taskstream_delivery_lag_seconds_count") - before.value("taskstream_delivery_lag_seconds_count")).toBe(5)
    await redis!.client.call("CLIENT", "KILL", "TYPE", "pubsub")
    await eventually(async () => (await scrape(url)).value("taskstream_redis_reconnects_total") === 1, 10_000, "a counted reconnect")
    for (const stream of streams) stream.close()
    await eventually(async () => (await scrape(url)).value('taskstream_connections{transport="sse"}') === 0, 5_000, "closed connections")
    const after = await scrape(url)
    expect(after.value("taskstream_subscriptions")).toBe(0)
    expect(after.value("taskstream_live_channels")).toBe(0)
  })
})
