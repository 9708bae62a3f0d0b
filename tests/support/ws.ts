/**
 * A WebSocket client for tests: a real socket to the gateway's `/api/v1/ws`
 * that records every server frame (parsed) and how the socket closed; and a
 * bare-TCP one for tests that decide when the client reads or answers.
 */
import { connect, type Socket } from "node:net"

export interface WsFrame {
  readonly op: string
  readonly [field: string]: any
}

export interface WsClient {
  readonly frames: Array<WsFrame>
  send(frame: unknown): void
  /** Resolves with the frames once `predicate` holds. */
  waitFor(predicate: (frames: ReadonlyArray<WsFrame>) => boolean, timeoutMs?: number, what?: string): Promise<ReadonlyArray<WsFrame>>
  /** Resolves with the first frame matching `predicate` after the first `from` frames. */
  next(predicate: (frame: WsFrame) => boolean, from?: number, timeoutMs?: number): Promise<WsFrame>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
  close(): void
}

export const wsUrl = (baseUrl: string) => `${baseUrl.replace(/^http/, "ws")}/api/v1/ws`

export const openWs = async (baseUrl: string, query = ""): Promise<WsClient> => {
  const socket = new WebSocket(wsUrl(baseUrl) + query)
  const frames: Array<WsFrame> = []
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const waiter of [...waiters]) waiter()
  }
  let isClosed = false
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.addEventListener("close", (event) => {
      isClosed = true
      notify()
      resolve({ code: event.code, reason: event.reason })
    })
  })
  socket.addEventListener("message", (event) => {
    frames.push(JSON.parse(String(event.data)))
    notify()
  })
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true })
    socket.addEventListener("error", () => reject(new Error("websocket did not open")), { once: true })
  })
  const waitFor: WsClient["waitFor"] = (predicate, timeoutMs = 10_000, what = "frames") =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`))
      }, timeoutMs)
      const check = () => {
        if (predicate(frames)) {
          clearTimeout(timer)
          waiters.delete(check)
          resolve(frames)
        } else if (isClosed) {
          clearTimeout(timer)
          waiters.delete(check)
          reject(new Error(`socket closed while waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`))
        }
      }
      waiters.add(check)
      check()
    })
  return {
    frames,
    send: (frame) => socket.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    waitFor,
    next: async (predicate, from = 0, timeoutMs) => {
      await waitFor((all) => all.slice(from).some(predicate), timeoutMs, "a matching frame")
      return frames.slice(from).find(predicate)!
    },
    closed,
    close: () => socket.close()
  }
}

/** The event frames of one subscription. */
/** Subscribe `sub` to a task and wait for the reply (`subscribed`, or an error about `sub`). */
export const subscribeWs = (ws: WsClient, agentId: string, sub: string, taskId: string, extra: Record<string, unknown> = {}) => {
  const from = ws.frames.length
  ws.send({ op: "subscribe", sub, agentId, taskId, ...extra })
  return ws.next((frame) => frame.sub === sub && (frame.op === "subscribed" || frame.op === "error"), from)
}

/** Send `frame` and wait for the reply with `op` about its `sub` and `ref` (or an error). */
export const requestWs = (ws: WsClient, frame: Record<string, unknown>, op: string) => {
  const from = ws.frames.length
  ws.send(frame)
  return ws.next((reply) => (reply.op === op || reply.op === "error") && reply.sub === frame.sub && reply.ref === frame.ref, from)
}

export const eventsOf = (frames: ReadonlyArray<WsFrame>, sub: string) =>
  frames.filter((frame) => frame.op === "event" && frame.sub === sub).map((frame) => frame.event)

/** A WebSocket client on a bare TCP socket, so the test decides when it reads. */
export const rawWebSocket = async (baseUrl: string): Promise<Socket> => {
  const { hostname, port } = new URL(baseUrl)
  const socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once("connect", resolve))
  socket.write(
    "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
  )
  return socket
}

/** A client → server text frame (masked, as the protocol requires). */
export const clientFrame = (text: string): Buffer => {
  const payload = Buffer.from(text)
  const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255])
  return Buffer.concat([header, Buffer.alloc(4), payload])
}

/** The close code in the server's frames (after the HTTP 101 response), if a close frame came. */
export const closeCodeIn = (bytes: Buffer): number | undefined => {
  let offset = bytes.indexOf("\r\n\r\n") + 4
  while (offset + 2 <= bytes.length) {
    const opcode = bytes[offset] & 0x0f
    let length = bytes[offset + 1] & 0x7f
    offset += 2
    if (length === 126) {
      length = bytes.readUInt16BE(offset)
      offset += 2
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset))
      offset += 8
    }
    if (opcode === 0x8) return offset + 2 <= bytes.length ? bytes.readUInt16BE(offset) : undefined
    offset += length
  }
  return undefined
}
