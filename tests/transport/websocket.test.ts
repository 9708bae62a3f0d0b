/** The WebSocket transport alone (no server): event frames built once per subscription prefix, not per socket. */
import { describe, expect, it } from "bun:test"
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { Writes } from "../../src/transport/outbox.ts"
import { EventFrames, eventFramePrefix, type WireSocket, WsConnection } from "../../src/transport/websocket.ts"

const task = { agentId: "a", taskId: "t" }
const TIME = "2026-11-24T10:00:00.000Z"

/** A socket that records the frames it is given. */
const recording = (): WireSocket & { readonly sent: Array<string> } => {
  const sent: Array<string> = []
  return { sent, send: (frames) => (sent.push(...frames), true), bufferedAmount: () => 0, close: () => {} }
}

/** An event that counts how often its envelope JSON is read (each read is a frame being built). */
const counted = (n: number) => {
  const event = LogEvent.fromDraft(builtinRegistry, `100-${n}`, task, "WorkflowStepStarted", TIME, { step: n })
  const json = event.json
  const reads = { count: 0 }
  Object.defineProperty(event, "json", { get: () => (reads.count++, json) })
  return { event, reads }
}

describe("WebSocket transport", () => {
  it("builds an event's frame once for every socket whose subscription has the same sub, once per other sub", async () => {
    const writes = new Writes()
    const frames = new EventFrames()
    const sockets = Array.from({ length: 3 }, recording)
    const connections = sockets.map((socket) =>
      new WsConnection(socket, { identified: true, subject: "s", expiresAt: Infinity, bufferBytes: 1 << 20, writes, frames, onClose: () => {} })
    )
    const { event, reads } = counted(1)
    connections[0].sendEvent(eventFramePrefix("s1"), event)
    connections[1].sendEvent(eventFramePrefix("s1"), event)
    connections[2].sendEvent(eventFramePrefix("other"), event)
    expect(reads.count).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(sockets.map((socket) => socket.sent.map((frame) => JSON.parse(frame)))).toEqual([
      [{ op: "event", sub: "s1", event: JSON.parse(event.json) }],
      [{ op: "event", sub: "s1", event: JSON.parse(event.json) }],
      [{ op: "event", sub: "other", event: JSON.parse(event.json) }]
    ])
    // The next event gets frames of its own.
    const next = counted(2)
    connections[0].sendEvent(eventFramePrefix("s1"), next.event)
    expect(next.reads.count).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(JSON.parse(sockets[0].sent[1]).event.data).toEqual({ step: 2 })
  })
})
