/**
 * The WebSocket link (SPEC §4.3): one socket, every subscription on it under
 * its key as `sub`. The token goes in an `auth` frame, not the URL: a browser
 * cannot read why an upgrade failed, but it can read the gateway's answer to
 * that frame, so a refused token (`unauthorized`) is told apart from a
 * transport that does not get through (`failed`: upgrade refused, 426,
 * unreachable — a close before any frame). Then it pings: the first frame
 * back proves the socket gets through. 4001 after that is `token_expired`,
 * any other close `dropped`.
 */
import type { Resync, TaskEnd, TaskEvent } from "./events.ts"
import type { Link, LinkEnd, LinkOptions, LinkSubscription } from "./link.ts"
import { apiUrl, typesQuery } from "./url.ts"

const TOKEN_EXPIRED = 4001
const AUTH_REF = "auth"
const endReasons = ["completed", "failed", "cancelled"] as const

export type ServerFrame = { readonly op: string; readonly sub?: string; readonly ref?: string; readonly [field: string]: unknown }

/** How an `end` frame says the task ended (`ended` for a reason this client does not know). */
export const endOf = (frame: ServerFrame): TaskEnd => endReasons.find((reason) => reason === frame.reason) ?? "ended"

/** The `subscribe` frame (SPEC §4.3) of a subscription: from `since`, or with or without history. */
export const subscribeFrame = ({ key, agentId, taskId, types, since, history }: LinkSubscription): Record<string, unknown> => ({
  op: "subscribe",
  sub: key,
  agentId,
  taskId,
  ...(since !== undefined ? { since } : history === false ? { history: false } : {}),
  ...(types === undefined ? {} : { types: typesQuery(types) })
})

export const openWebSocketLink = ({ baseUrl, token, events, WebSocket: Socket = globalThis.WebSocket }: LinkOptions): Link => {
  const url = apiUrl(baseUrl, undefined, "/ws")
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  const socket = new Socket(url.toString())
  const subscriptions = new Map<string, LinkSubscription>()
  /** Authenticated (or no token to send): subscriptions may go out. */
  let ready = false
  let established = false
  let done = false

  const send = (frame: Record<string, unknown>) => {
    if (ready && !done) socket.send(JSON.stringify(frame))
  }
  const subscribe = (subscription: LinkSubscription) => send(subscribeFrame(subscription))

  const start = () => {
    ready = true
    send({ op: "ping" })
    for (const subscription of subscriptions.values()) subscribe(subscription)
  }

  const finish = (end: LinkEnd) => {
    if (done) return
    done = true
    socket.close(1000)
    events.closed(end)
  }

  const receive = (frame: ServerFrame) => {
    if (frame.op === "authenticated") return start()
    const key = frame.sub
    if (key === undefined || !subscriptions.has(key)) return
    switch (frame.op) {
      case "event":
        return events.event(key, frame.event as TaskEvent)
      case "end":
        subscriptions.delete(key)
        return events.end(key, endOf(frame))
      case "resync":
        return events.resync(key, { reason: String(frame.reason), oldest: String(frame.oldest) } satisfies Resync)
      case "error":
        subscriptions.delete(key)
        return events.refused(key, { status: 0, code: String(frame.code), message: String(frame.message) })
    }
  }

  socket.addEventListener("open", () => {
    if (token === undefined) return start()
    socket.send(JSON.stringify({ op: "auth", token, ref: AUTH_REF }))
  })
  socket.addEventListener("message", (message) => {
    if (done) return
    const frame = JSON.parse(String(message.data)) as ServerFrame
    // A refused token: in answer to our `auth` frame, or to a subscription sent without one.
    if (frame.op === "error" && frame.code === "unauthorized" && (frame.ref === AUTH_REF || frame.sub !== undefined)) {
      return finish("unauthorized")
    }
    if (!established) {
      established = true
      events.established()
    }
    receive(frame)
  })
  socket.addEventListener("close", (close) => {
    if (done) return
    done = true
    events.closed(!established ? "failed" : close.code === TOKEN_EXPIRED ? "token_expired" : "dropped")
  })

  return {
    transport: "websocket",
    add: (subscription) => {
      subscriptions.set(subscription.key, subscription)
      subscribe(subscription)
    },
    remove: (key) => {
      if (subscriptions.delete(key)) send({ op: "unsubscribe", sub: key })
    },
    close: () => {
      if (done) return
      done = true
      socket.close(1000)
    }
  }
}
