/**
 * An SSE connection on Bun's direct response body (the Bun entry's choice), served by a real
 * `Bun.serve` on a loopback socket: the body opens only when the runtime starts the response,
 * and Bun buffers what the socket does not take — both must keep the transport's guarantees.
 */
import { afterEach, describe, expect, it } from "bun:test"
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import type { CloseReason } from "../../src/transport/connections.ts"
import { TaskstreamCodecs } from "../../src/transport/codecs/taskstream.ts"
import { Writes } from "../../src/transport/outbox.ts"
import { SSE_HEADERS, SseConnection } from "../../src/transport/sse.ts"
import { directSseBody } from "../../src/transport/sseBody.ts"
import { openRawSse } from "../support/rawSse.ts"
import { eventFrames } from "../support/sse.ts"

const task = { agentId: "a", taskId: "t" }
const TIME = "2026-11-24T10:00:00.000Z"
const step = (n: number, extra: Record<string, unknown> = {}) =>
  LogEvent.fromDraft(builtinRegistry, `100-${n}`, task, "WorkflowStepStarted", TIME, { step: n, ...extra })

const servers: Array<{ stop(force: boolean): unknown }> = []
afterEach(() => {
  for (const server of servers.splice(0)) server.stop(true)
})

/** A server whose one route answers with an SSE connection on a direct body; `opened` sees it first. */
const serve = (bufferBytes: number, opened: (connection: SseConnection) => void) => {
  const closes: Array<CloseReason> = []
  const writes = new Writes()
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    fetch: () => {
      const connection = new SseConnection({
        codec: TaskstreamCodecs.payload,
        subject: "s",
        expiresAt: Infinity,
        retryMs: 2000,
        bufferBytes,
        writes,
        body: directSseBody,
        owner: { closed: (reason) => void closes.push(reason) }
      })
      opened(connection)
      return new Response(connection.body, { headers: SSE_HEADERS })
    }
  })
  servers.push(server)
  return { url: `http://127.0.0.1:${server.port}/`, closes }
}

describe("SSE on Bun's direct body", () => {
  it("sends what was queued before the body opened, and ends a stream closed before that", async () => {
    // A task that already ended: its history and its end are queued before the response starts.
    const { url, closes } = serve(1 << 20, (connection) => {
      connection.event(step(1))
      connection.event(step(2))
      connection.end("completed")
    })
    const client = openRawSse(url)
    expect(await client.closed).toEqual({ clean: true })
    expect(eventFrames(client.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([1, 2])
    expect(client.frames[0]).toMatchObject({ retry: 2000 })
    expect(closes).toEqual(["completed"])
  })

  it("counts what Bun holds unsent, so a client that stops reading is cut off at its buffer", async () => {
    let stream: SseConnection | undefined
    const { url, closes } = serve(256 * 1024, (connection) => {
      stream = connection
    })
    const client = openRawSse(url, { stalled: true })
    for (let i = 0; i < 200 && stream === undefined; i++) await Bun.sleep(10)
    const big = "x".repeat(64 * 1024)
    // The kernel's socket buffers take a few MB first; past them Bun buffers, and that is the backlog.
    for (let round = 0; round < 1000 && closes.length === 0; round++) {
      stream!.event(step(round, { big }))
      await Bun.sleep(0)
    }
    expect(closes).toEqual(["slow_consumer"])
    expect(stream!.backlog()).toBe(0)
    client.destroy()
  })
})
