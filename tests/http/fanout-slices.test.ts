/**
 * A fan-out wider than one flush slice (FLUSH_SLICE connections) is written
 * over several turns: every client still gets every event once and in order,
 * and a publisher is answered while the slices go out.
 */
import { describe, expect, it } from "bun:test"
import { postEvents, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { openRawSse } from "../support/rawSse.ts"
import { eventFrames } from "../support/sse.ts"
import { FLUSH_SLICE } from "../../src/transport/outbox.ts"

describe("Fan-out in slices", () => {
  const harness = useHarness("redis")

  it("delivers every event in order to more clients than one slice holds, one publish after another", async () => {
    const { url } = harness()
    const agent = "agent-slices"
    const task = uniqueTask("slices")
    const clients = Array.from({ length: FLUSH_SLICE + 100 }, () => openRawSse(`${url}${taskPath(agent, task)}/events/stream`))
    try {
      await Promise.all(clients.map((client) => client.waitFor((frames) => frames.length >= 1, 20_000)))
      const total = 30
      // Single events and batches, not waiting for the fan-out between them.
      for (let n = 1; n <= total; n += 3) {
        const body = n % 2 === 0 ? [n, n + 1, n + 2].map((step) => ({ type: "WorkflowStepStarted", data: { step } }))
          : { type: "WorkflowStepStarted", data: { step: n } }
        expect((await postEvents(url, agent, task, body)).status).toBe(201)
        if (n % 2 !== 0) {
          for (const step of [n + 1, n + 2]) expect((await postEvents(url, agent, task, { type: "WorkflowStepStarted", data: { step } })).status).toBe(201)
        }
      }
      const expected = Array.from({ length: total }, (_, i) => i + 1)
      for (const client of clients) {
        await client.waitFor((frames) => eventFrames(frames).length >= total, 20_000)
        expect(eventFrames(client.frames).map((frame) => JSON.parse(frame.data).step)).toEqual(expected)
      }
    } finally {
      for (const client of clients) client.destroy()
    }
  }, 60_000)
})
