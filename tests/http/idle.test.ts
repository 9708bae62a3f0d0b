/**
 * Idle handling, the same on both runtimes (SPEC §4.1, §4.3): a silent SSE
 * stream is never cut (Bun's default 10 s idle timeout is off, Deno has none),
 * a silent WebSocket that answers the server's pings stays open, and one that
 * stops answering is closed within WS_IDLE_TIMEOUT_S. The runtimes run
 * concurrently: each waits past 10 s.
 */
import { expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { describeEachRuntime, startHarness, uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { openSse } from "../support/sse.ts"
import { eventsOf, openWs, rawWebSocket } from "../support/ws.ts"

const AGENT = "agent-idle"
const IDLE_TIMEOUT_S = 8
// Past Bun's default idle timeout (10 s), which it checks in 4 s ticks.
const SILENCE_MS = 12_000

describeEachRuntime("Idle connections", (runtime) => {
  it.concurrent(`keeps silent streams open past ${SILENCE_MS / 1000} s and closes a WebSocket that stops answering pings within WS_IDLE_TIMEOUT_S`, async () => {
    const { harness, stop } = await startHarness("memory", { HEARTBEAT_MS: "60000", WS_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S) }, runtime)
    try {
      const task = uniqueTask("idle")
      const sse = await openSse(`${harness.url}${taskPath(AGENT, task)}/events/stream`)
      const ws = await openWs(harness.url)
      ws.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: task })
      await ws.waitFor((frames) => frames.some((frame) => frame.op === "subscribed"))
      const mute = await rawWebSocket(harness.url)
      const opened = Date.now()
      let muteClosedAfter: number | undefined
      mute.once("close", () => (muteClosedAfter = Date.now() - opened))
      // Read (and drop) what the server sends, pings included, but never answer.
      mute.resume()
      await sleep(SILENCE_MS)
      expect(muteClosedAfter).toBeGreaterThan((IDLE_TIMEOUT_S / 2) * 1000)
      expect(muteClosedAfter).toBeLessThan(IDLE_TIMEOUT_S * 1000 + 1000)
      expect((await postEvents(harness.url, AGENT, task, step(1))).status).toBe(201)
      await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowStepStarted"))
      await ws.waitFor((frames) => eventsOf(frames, "s").length === 1)
      expect(sse.frames.some((frame) => frame.event === "heartbeat")).toBe(false)
      ws.close()
      sse.close()
    } finally {
      await stop()
    }
  }, 30_000)
})
