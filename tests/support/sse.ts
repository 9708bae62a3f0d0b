/**
 * An SSE client for tests: a real HTTP request whose body is parsed into
 * frames exactly as EventSource would (id, event, data, retry; comments and
 * blank lines), exposing the raw text too.
 */
import { connect } from "node:net"

export interface SseFrame {
  readonly id?: string
  readonly event: string
  readonly data: string
  readonly retry?: number
}

export interface SseStream {
  readonly status: number
  readonly headers: Headers
  readonly frames: Array<SseFrame>
  /** The body as received so far. */
  raw(): string
  /** Resolves when the server ends the response. */
  readonly ended: Promise<void>
  isEnded(): boolean
  waitFor(predicate: (frames: ReadonlyArray<SseFrame>) => boolean, timeoutMs?: number): Promise<void>
  close(): void
}

export const parseFrames = (text: string): { frames: Array<SseFrame>; rest: string } => {
  const frames: Array<SseFrame> = []
  const blocks = text.split("\n\n")
  const rest = blocks.pop() ?? ""
  for (const block of blocks) {
    let id: string | undefined
    let event = "message"
    const data: Array<string> = []
    let retry: number | undefined
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue
      const colon = line.indexOf(":")
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "id") id = value
      else if (field === "event") event = value
      else if (field === "data") data.push(value)
      else if (field === "retry") retry = Number(value)
    }
    frames.push({ ...(id === undefined ? {} : { id }), event, data: data.join("\n"), ...(retry === undefined ? {} : { retry }) })
  }
  return { frames, rest }
}

export const openSse = async (url: string, headers: Record<string, string> = {}): Promise<SseStream> => {
  const abort = new AbortController()
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal })
  return sseStream(response, () => abort.abort())
}

/**
 * The same client on its own TCP socket, speaking HTTP/1.1 (a chunked response
 * body, as Bun.serve sends a stream). Bun's `fetch` keeps at most 256 requests
 * in flight per process, so tests with more open streams than that use this.
 */
export const openSseSocket = (
  url: string,
  headers: Record<string, string> = {},
  /** A slow reader: after each chunk, stop reading the socket for this long (TCP backpressure reaches the server). */
  options: { readonly pauseMs?: number } = {}
): Promise<SseStream> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const socket = connect(Number(target.port), target.hostname)
    const body = new TransformStream<Uint8Array, Uint8Array>()
    const writer = body.writable.getWriter()
    const lines = Object.entries({ host: target.host, accept: "text/event-stream", ...headers }).map(([k, v]) => `${k}: ${v}\r\n`)
    socket.once("connect", () => socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\n${lines.join("")}\r\n`))
    let head: Buffer<ArrayBufferLike> | undefined = Buffer.alloc(0)
    let chunked: Buffer<ArrayBufferLike> = Buffer.alloc(0)
    const unchunk = () => {
      // Chunked transfer coding: <hex size>\r\n<bytes>\r\n … 0\r\n\r\n
      for (;;) {
        const lineEnd = chunked.indexOf("\r\n")
        if (lineEnd < 0) return
        const size = parseInt(chunked.subarray(0, lineEnd).toString(), 16)
        // The last chunk ends the response, as for any HTTP client: not the connection's close,
        // which a keep-alive server need not hurry.
        if (size === 0) {
          void writer.close().catch(() => {})
          return void socket.end()
        }
        if (chunked.length < lineEnd + 2 + size + 2) return
        void writer.write(new Uint8Array(chunked.subarray(lineEnd + 2, lineEnd + 2 + size)))
        chunked = chunked.subarray(lineEnd + 2 + size + 2)
      }
    }
    socket.on("data", (data: Buffer) => {
      if (options.pauseMs !== undefined) {
        socket.pause()
        setTimeout(() => socket.resume(), options.pauseMs)
      }
      if (head === undefined) {
        chunked = Buffer.concat([chunked, data])
        return unchunk()
      }
      head = Buffer.concat([head, data])
      const end = head.indexOf("\r\n\r\n")
      if (end < 0) return
      const [statusLine, ...headerLines] = head.subarray(0, end).toString().split("\r\n")
      const responseHeaders = new Headers(headerLines.map((line) => {
        const colon = line.indexOf(":")
        return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as [string, string]
      }))
      chunked = head.subarray(end + 4)
      head = undefined
      const status = Number(statusLine.split(" ")[1])
      resolve(sseStream({ status, headers: responseHeaders, body: status === 204 ? null : body.readable }, () => socket.destroy()))
      unchunk()
    })
    socket.once("error", (error) => (head === undefined ? undefined : reject(error)))
    socket.once("close", () => {
      // Closed before a response (a gateway killed or draining as it accepted): fail, never hang.
      if (head !== undefined) reject(new Error("the connection closed before a response"))
      void writer.close().catch(() => {})
    })
  })

/**
 * Resolve once `predicate(frames)` holds, checked now and at every call of the
 * waiter it adds to `waiters`; reject when the stream is over first (`over()`
 * says why) or after `timeoutMs` (`tail()` adds what arrived last).
 */
export const waitForFrames = <F>(
  waiters: Set<() => void>,
  frames: ReadonlyArray<F>,
  predicate: (frames: ReadonlyArray<F>) => boolean,
  timeoutMs: number,
  over: () => string | undefined,
  tail: () => string = () => ""
): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    const check = () => {
      if (predicate(frames)) {
        cleanup()
        return resolve()
      }
      const ended = over()
      if (ended === undefined) return
      cleanup()
      reject(new Error(`${ended} before the expected frames arrived; got ${frames.length} frames`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms; got ${frames.length} frames${tail()}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      waiters.delete(check)
    }
    waiters.add(check)
    check()
  })

/** Parse a response already at hand (e.g. from `app.request()`); `close` cancels it. */
export const sseStream = (
  response: { readonly status: number; readonly headers: Headers; readonly body: ReadableStream<Uint8Array> | null },
  close: () => void
): SseStream => {
  const frames: Array<SseFrame> = []
  let raw = ""
  let pending = ""
  let ended = false
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const waiter of waiters) waiter()
  }
  const done = (async () => {
    if (response.body === null) return
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body) {
        const text = decoder.decode(chunk, { stream: true })
        raw += text
        const parsed = parseFrames(pending + text)
        pending = parsed.rest
        frames.push(...parsed.frames)
        notify()
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true
      notify()
    }
  })()
  return {
    status: response.status,
    headers: response.headers,
    frames,
    raw: () => raw,
    ended: done,
    isEnded: () => ended,
    waitFor: (predicate, timeoutMs = 10_000) =>
      waitForFrames(waiters, frames, predicate, timeoutMs, () => (ended ? "stream ended" : undefined), () => `: ${raw.slice(-500)}`),
    close
  }
}

/** Data frames of workflow events (not retry/heartbeat/resync). */
export const eventFrames = (frames: ReadonlyArray<SseFrame>) =>
  frames.filter((frame) => frame.event.startsWith("Workflow"))

/**
 * Follow a task like EventSource does, but across gateways: whenever a
 * response ends before a terminal event (or fails), reconnect to the next URL
 * with Last-Event-ID. Resolves with every event frame received, in order.
 */
export const followAcross = async (
  urls: ReadonlyArray<string>,
  options: { readonly headers?: Record<string, string>; readonly timeoutMs?: number; readonly onOpen?: () => void } = {}
): Promise<Array<SseFrame>> => {
  const received: Array<SseFrame> = []
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  let attempt = 0
  while (Date.now() < deadline) {
    const url = urls[attempt++ % urls.length]
    const lastId = received.findLast((frame) => frame.id !== undefined)?.id
    let stream: SseStream
    try {
      stream = await openSse(url, { ...options.headers, ...(lastId === undefined ? {} : { "last-event-id": lastId }) })
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50))
      continue
    }
    if (stream.status === 204) return received
    if (stream.status !== 200) {
      stream.close()
      await new Promise((resolve) => setTimeout(resolve, 50))
      continue
    }
    options.onOpen?.()
    await stream.ended
    received.push(...eventFrames(stream.frames))
    if (["WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled"].includes(received.at(-1)?.event ?? "")) return received
  }
  throw new Error(`followAcross timed out with ${received.length} events`)
}
