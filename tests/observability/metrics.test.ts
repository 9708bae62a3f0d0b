/** A labelled metric handle (the hot paths' way to record) updates the same series as `record` with those labels. */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { makeMetrics, Metrics } from "../../src/observability/metrics.ts"

const series = (text: string, name: string) => text.split("\n").filter((line) => line.startsWith(name))

describe("metrics recorder", () => {
  it("records through a labelled handle into the series `record` writes with the same labels, and no other", async () => {
    const metrics = makeMetrics()
    const sse = metrics.labelled(Metrics.connections, { transport: "sse" })
    sse(3)
    metrics.record(Metrics.connections, 1, { transport: "ws" })
    const lag = metrics.labelled(Metrics.deliveryLag, {})
    for (const seconds of [0.001, 0.002, 0.5]) lag(seconds)
    const text = await Effect.runPromise(metrics.render)
    expect(series(text, "taskstream_connections{")).toEqual(['taskstream_connections{transport="sse"} 3', 'taskstream_connections{transport="ws"} 1'])
    expect(series(text, "taskstream_delivery_lag_seconds_count")).toEqual(["taskstream_delivery_lag_seconds_count 3"])
    // Two recorders (two gateways in one process) share nothing.
    const other = makeMetrics()
    other.labelled(Metrics.connections, { transport: "sse" })(7)
    expect(series(await Effect.runPromise(metrics.render), 'taskstream_connections{transport="sse"}')).toEqual(['taskstream_connections{transport="sse"} 3'])
  })
})
