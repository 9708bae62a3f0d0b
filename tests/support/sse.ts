/**
 * An SSE client for tests: a real HTTP request whose body is parsed into
 * frames exactly as EventSource would (id, event, data, retry; comments and
 * blank lines), exposing the raw text too.
 */
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
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(frames)) {
            cleanup()
            resolve()
          } else if (ended) {
            cleanup()
            reject(new Error(`stream ended before the expected frames arrived; got ${frames.length} frames`))
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`timed out after ${timeoutMs} ms; got ${frames.length} frames: ${raw.slice(-500)}`))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      }),
    close: () => abort.abort()
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
