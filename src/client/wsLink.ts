/**
 * The WebSocket link (SPEC §4.3): one socket, every subscription on it under
 * its key as `sub`. It pings at open: the `pong` (or any frame) proves the
 * socket gets through. A close before that is `failed` (upgrade refused, 426,
 * unreachable), 4001 after it is `token_expired`, any other close `dropped`.
 */
import type { Resync, TaskEvent } from "./events.ts"
import type { Link, LinkOptions, LinkSubscription } from "./link.ts"
import { apiUrl, typesQuery } from "./url.ts"

const TOKEN_EXPIRED = 4001
const endReasons = ["completed", "failed", "cancelled", "not_found"] as const

type ServerFrame = { readonly op: string; readonly sub?: string; readonly [field: string]: unknown }

export const openWebSocketLink = ({ baseUrl, token, events, WebSocket: Socket = globalThis.WebSocket }: LinkOptions): Link => {
  const url = apiUrl(baseUrl, token, "/ws")
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  const socket = new Socket(url.toString())
  const subscriptions = new Map<string, LinkSubscription>()
  let opened = false
  let established = false
  let done = false

  const send = (frame: Record<string, unknown>) => {
    if (opened && !done) socket.send(JSON.stringify(frame))
  }
  const subscribe = ({ key, agentId, taskId, types, since, history }: LinkSubscription) =>
    send({
      op: "subscribe",
      sub: key,
      agentId,
      taskId,
      ...(since !== undefined ? { since } : history === false ? { history: false } : {}),
      ...(types === undefined ? {} : { types: typesQuery(types) })
    })

  const receive = (frame: ServerFrame) => {
    const key = frame.sub
    if (key === undefined || !subscriptions.has(key)) return
    switch (frame.op) {
      case "event":
        return events.event(key, frame.event as TaskEvent)
      case "end":
        subscriptions.delete(key)
        return events.end(key, endReasons.find((reason) => reason === frame.reason) ?? "ended")
      case "resync":
        return events.resync(key, { reason: String(frame.reason), oldest: String(frame.oldest) } satisfies Resync)
      case "error":
        subscriptions.delete(key)
        return events.refused(key, { status: 0, code: String(frame.code), message: String(frame.message) })
    }
  }

  socket.addEventListener("open", () => {
    opened = true
    send({ op: "ping" })
    for (const subscription of subscriptions.values()) subscribe(subscription)
  })
  socket.addEventListener("message", (message) => {
    if (done) return
    if (!established) {
      established = true
      events.established()
    }
    receive(JSON.parse(String(message.data)) as ServerFrame)
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
