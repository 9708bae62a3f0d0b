/**
 * A curl-like SSE client on a raw TCP socket, for what `fetch` hides: whether
 * the chunked body really ended (its terminating `0` chunk) or the connection
 * was cut, and reading at a set rate (a slow link) or not at all.
 */
import { connect } from "node:net"
import { parseFrames, type SseFrame, waitForFrames } from "./sse.ts"

export interface RawSseOptions {
  readonly headers?: Record<string, string>
  /** Read at most this many bytes per second (the socket is paused in between). */
  readonly bytesPerSecond?: number
  /** Never read after the request is sent. */
  readonly stalled?: boolean
}

export interface RawSse {
  readonly frames: Array<SseFrame>
  /** Status code, once the head arrived. */
  status(): number | undefined
  /** Bytes received on the socket. */
  received(): number
  /**
   * Resolves when the body ends: `clean` when it ended with its terminating chunk (the socket
   * is then closed by the client, as curl does), not when the connection was cut before it.
   */
  readonly closed: Promise<{ readonly clean: boolean }>
  waitFor(predicate: (frames: ReadonlyArray<SseFrame>) => boolean, timeoutMs?: number): Promise<void>
  /** Start reading (a stalled client). */
  resume(): void
  destroy(): void
}

export const openRawSse = (url: string, options: RawSseOptions = {}): RawSse => {
  const target = new URL(url)
  const socket = connect(Number(target.port), target.hostname)
  const frames: Array<SseFrame> = []
  const waiters = new Set<() => void>()
  let status: number | undefined
  let head: Buffer<ArrayBufferLike> | undefined = Buffer.alloc(0)
  let chunked: Buffer<ArrayBufferLike> = Buffer.alloc(0)
  let text = ""
  let received = 0
  let clean = false
  let isClosed = false
  const decoder = new TextDecoder()
  const started = Date.now()

  const lines = Object.entries({ host: target.host, accept: "text/event-stream", ...options.headers }).map(([k, v]) => `${k}: ${v}\r\n`)
  socket.once("connect", () => {
    socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\n${lines.join("")}\r\n`)
    if (options.stalled) socket.pause()
  })

  const unchunk = () => {
    for (;;) {
      const lineEnd = chunked.indexOf("\r\n")
      if (lineEnd < 0) return
      const size = parseInt(chunked.subarray(0, lineEnd).toString(), 16)
      if (chunked.length < lineEnd + 2 + size + 2) return
      if (size === 0) {
        clean = true
        chunked = Buffer.alloc(0)
        socket.destroy()
        return
      }
      text += decoder.decode(chunked.subarray(lineEnd + 2, lineEnd + 2 + size), { stream: true })
      chunked = chunked.subarray(lineEnd + 2 + size + 2)
    }
  }

  socket.on("data", (data: Buffer) => {
    received += data.length
    if (head !== undefined) {
      head = Buffer.concat([head, data])
      const end = head.indexOf("\r\n\r\n")
      if (end < 0) return
      status = Number(head.subarray(0, end).toString().split(" ")[1])
      chunked = head.subarray(end + 4)
      head = undefined
    } else {
      chunked = chunked.length === 0 ? data : Buffer.concat([chunked, data])
    }
    unchunk()
    const parsed = parseFrames(text)
    text = parsed.rest
    if (parsed.frames.length > 0) {
      for (const frame of parsed.frames) frames.push(frame)
      for (const waiter of waiters) waiter()
    }
    if (options.bytesPerSecond !== undefined) {
      // Ahead of the allowed rate: stop reading until the budget catches up (TCP pushes back on the server).
      const aheadMs = (received / options.bytesPerSecond) * 1000 - (Date.now() - started)
      if (aheadMs > 0) {
        socket.pause()
        setTimeout(() => socket.resume(), aheadMs)
      }
    }
  })
  socket.on("error", () => {})
  const closed = new Promise<{ clean: boolean }>((resolve) =>
    socket.once("close", () => {
      isClosed = true
      for (const waiter of waiters) waiter()
      resolve({ clean })
    })
  )

  return {
    frames,
    status: () => status,
    received: () => received,
    closed,
    waitFor: (predicate, timeoutMs = 10_000) =>
      waitForFrames(waiters, frames, predicate, timeoutMs, () => (isClosed ? "connection closed" : undefined)),
    resume: () => socket.resume(),
    destroy: () => socket.destroy()
  }
}
