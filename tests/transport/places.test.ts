/**
 * A connection's place among the limits (SPEC §6) is given back exactly once: by the admission's
 * `release` before a stream exists, or — once handed over to its SSE connection — when that
 * connection closes, whoever closes it.
 */
import { describe, expect, it } from "bun:test"
import { startApp } from "../support/app.ts"
import { TaskstreamCodecs } from "../../src/transport/codecs/taskstream.ts"
import { type CloseReason, Connections, type StreamConnection } from "../../src/transport/connections.ts"
import { SseConnection } from "../../src/transport/sse.ts"

const silent = () => {}
const metrics = { record: silent, labelled: () => silent, init: silent } as unknown as ConstructorParameters<typeof Connections>[2]
/** An instance with room for one connection of each subject and two in all. */
const instance = () => new Connections(60_000, { maxConnections: 2, maxConnectionsPerSubject: 1 }, metrics, silent)

const stream = (connections: Connections, subject: string, bufferBytes = 1 << 20) =>
  new SseConnection({
    codec: TaskstreamCodecs.payload,
    subject,
    expiresAt: Infinity,
    retryMs: 2000,
    bufferBytes,
    writes: connections.writes,
    owner: connections
  })

/** Admit `subject`, hand the place to a new SSE connection and count it open, as the SSE route does. */
const opened = (connections: Connections, subject: string) => {
  const admission = connections.admit(subject)
  if (!admission.ok) throw new Error(`refused: ${admission.limit}`)
  const connection = stream(connections, subject)
  admission.handOver()
  connections.add(connection)
  return { admission, connection }
}

describe("connection places", () => {
  for (const reason of ["client_gone", "completed", "token_expired", "slow_consumer", "shutdown"] satisfies Array<CloseReason>) {
    it(`gives an SSE connection's place back once when it closes (${reason})`, () => {
      const connections = instance()
      const { admission, connection } = opened(connections, "alice")
      expect(connections.admit("alice").ok).toBe(false)
      connection.close(reason)
      expect(connections.size).toBe(0)
      // Freed once: a second close and a late release give nothing back twice.
      connection.close(reason)
      admission.release()
      const again = connections.admit("alice")
      expect(again.ok).toBe(true)
      expect(connections.admit("alice").ok).toBe(false)
      // The instance's count is right too: one more subject fits, a third does not.
      expect(connections.admit("bob").ok).toBe(true)
      expect(connections.admit("carol").ok).toBe(false)
      connections.stop()
    })
  }

  it("keeps the place handed over until the connection closes: release() does nothing after handOver()", () => {
    const connections = instance()
    const { admission, connection } = opened(connections, "alice")
    admission.release()
    expect(connections.admit("alice").ok).toBe(false)
    connection.close("client_gone")
    expect(connections.admit("alice").ok).toBe(true)
    connections.stop()
  })

  it("frees the place of a connection cut off as it opens, and keeps no such connection among the open ones", () => {
    const connections = instance()
    const admission = connections.admit("alice")
    if (!admission.ok) throw new Error("refused")
    // Web streams open at once: the first frames (the retry line) are over a 4-byte buffer.
    const connection = stream(connections, "alice", 4)
    admission.handOver()
    connections.add(connection)
    expect(connection.isClosed).toBe(true)
    expect(connections.size).toBe(0)
    expect(connections.admit("alice").ok).toBe(true)
    connections.stop()
  })

  it("closes a connection of any transport counted after closeAll (the drain) as closeAll closed the others", () => {
    const connections = instance()
    const closed: Array<CloseReason> = []
    const late: StreamConnection = {
      transport: "ws",
      subject: "alice",
      lastWrite: Date.now(),
      expiresAt: Infinity,
      isClosed: false,
      heartbeat: () => {},
      close: (reason) => {
        closed.push(reason)
        connections.remove(late, reason)
      }
    }
    connections.closeAll("shutdown")
    connections.add(late)
    expect(closed).toEqual(["shutdown"])
    expect(connections.size).toBe(0)
    connections.stop()
  })

  it("serves a stream cut off as it opens without keeping it open or its place (SSE route, web streams)", async () => {
    const app = await startApp({ clientBufferBytes: 4, maxConnectionsPerSubject: 1 })
    try {
      for (let i = 0; i < 2; i++) {
        const response = await app.request("/api/v1/agents/a/tasks/t/events/stream", { headers: { accept: "text/event-stream" } })
        expect(response.status).toBe(200)
        await response.body?.cancel().catch(() => {})
        expect(app.deps.connections.size).toBe(0)
      }
    } finally {
      await app.close()
    }
  })

  it("ends a stream opened while the drain began (after its request passed the check), as the drain ends the others", async () => {
    const app = await startApp()
    try {
      const add = app.deps.connections.add.bind(app.deps.connections)
      // The drain starts between this request's check and its stream's opening (as gateway.ts drains).
      app.deps.connections.add = (connection) => {
        app.deps.lifecycle.draining = true
        app.deps.connections.closeAll("shutdown")
        add(connection)
      }
      const response = await app.request("/api/v1/agents/a/tasks/t/events/stream", { headers: { accept: "text/event-stream" } })
      expect(response.status).toBe(200)
      // Ended (the taskstream encoding says nothing more on a shutdown: the client resumes elsewhere), not left open.
      expect(await response.text()).toBe("retry: 2000\n\n")
      expect(app.deps.connections.size).toBe(0)
    } finally {
      await app.close()
    }
  })
})
