/**
 * A WebSocket client for tests: a real socket to the gateway's `/api/v1/ws`
 * that records every server frame (parsed) and how the socket closed.
 */
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
export const eventsOf = (frames: ReadonlyArray<WsFrame>, sub: string) =>
  frames.filter((frame) => frame.op === "event" && frame.sub === sub).map((frame) => frame.event)
