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

  it("closes a socket whose send throws, told 'write_failed', and still writes to the others", async () => {
    const errors: Array<unknown> = []
    const writes = new Writes((error) => void errors.push(error))
    const frames = new EventFrames()
    const closedWith: Array<[number, string]> = []
    const broken: WireSocket = {
      send: () => {
        throw new TypeError("the socket is gone")
      },
      bufferedAmount: () => 0,
      close: (code, reason) => {
        closedWith.push([code, reason])
        throw new TypeError("the socket is gone")
      }
    }
    const healthy = recording()
    const reasons: Array<string> = []
    const open = (socket: WireSocket) =>
      new WsConnection(socket, { identified: true, subject: "s", expiresAt: Infinity, bufferBytes: 1 << 20, writes, frames, onClose: (reason) => void reasons.push(reason) })
    const [first, second] = [open(broken), open(healthy)]
    const { event } = counted(1)
    first.sendEvent(eventFramePrefix("s1"), event)
    second.sendEvent(eventFramePrefix("s1"), event)
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect({ reasons, closed: closedWith.length, sent: healthy.sent.length, errors: errors.map(String) }).toEqual({
      reasons: ["write_failed"],
      closed: 1,
      sent: 1,
      errors: ["TypeError: the socket is gone"]
    })
  })
})
