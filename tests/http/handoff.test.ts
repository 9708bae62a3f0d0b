/**
 * The history→live hand-off under load (SPEC §7): clients connect at random
 * moments while numbered events are published at ~1000/s; every client must
 * receive 1..N exactly once, in order.
 */
import { expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { describeEachLog, uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { eventFrames, openSse, type SseStream } from "../support/sse.ts"

const EVENTS = 2000
const CLIENTS = 40
const BATCH = 5
const BATCH_EVERY_MS = 5

/** The step numbers a stream received, in order, and the terminal event last. */
const received = (stream: SseStream) => {
  const events = eventFrames(stream.frames)
  return { steps: events.filter((f) => f.event === "WorkflowStepStarted").map((f) => JSON.parse(f.data).step), last: events.at(-1)?.event }
}

describeEachLog("SSE hand-off race", {}, (h) => {
  it(`delivers 1..${EVENTS} exactly once, in order, to ${CLIENTS} clients connecting while events are published`, async () => {
    const task = uniqueTask("race")
    const agent = "agent-race"
    const url = `${h().url}${taskPath(agent, task)}/events/stream`
    const publishing = (async () => {
      for (let n = 1; n <= EVENTS; n += BATCH) {
        const started = performance.now()
        const response = await postEvents(h().url, agent, task, Array.from({ length: BATCH }, (_, i) => step(n + i)))
        expect(response.status).toBe(201)
        await sleep(Math.max(0, BATCH_EVERY_MS - (performance.now() - started)))
      }
    })()
    const publishWindowMs = (EVENTS / BATCH) * BATCH_EVERY_MS
    const streams = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        await sleep(Math.random() * publishWindowMs)
        return openSse(url)
      })
    )
    await publishing
    await postEvents(h().url, agent, task, { type: "WorkflowCompleted", data: {} })
    await Promise.all(streams.map((stream) => stream.ended))
    const expected = Array.from({ length: EVENTS }, (_, i) => i + 1)
    for (const stream of streams) {
      const { steps, last } = received(stream)
      expect(steps).toEqual(expected)
      expect(last).toBe("WorkflowCompleted")
    }
  }, 120_000)
})
