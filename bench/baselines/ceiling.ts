// Ceiling baseline: the least work a gateway can do. One Redis subscriber, one SUBSCRIBE per task
// channel, each event framed once, frames ready in one event-loop turn written to each client in
// one write (Bun direct stream: write… then one flush). No pipeline, no validation, no heartbeats.
// History (and a resume from Last-Event-ID) is one XRANGE per client. WebSocket: `{"op":"event",…}`
// frames published once per task and `sub` label through Bun's pub/sub (`server.publish`: encoded
// once, written to every subscribed socket natively; 14–21 % less CPU than corked sends per socket
// in ws-fanout). HTTP ingest: `POST …/events` with one `{type, data}` parsed and
// appended through src/log/append.lua — no validation, no auth, no task index.
// Memory: the runtime-level levers the gateway uses, so the idle figure compares like with like —
// Bun.shrink() once a surge of connections is over (src/transport/memoryReducer.ts) and no empty
// array per idle client.
import Redis from "ioredis"
import { readFileSync } from "node:fs"
import { join as joinPath } from "node:path"
import {
  announce, frameOfEnvelope, framesOfEntries, idAfter, liveChannel, logKey, parseIngestRoute, parseStreamRoute,
  RETRY_FRAME, SSE_HEADERS, TERMINAL, type Frame,
} from "./frames.ts"
import { appendArgs } from "../support/publisher.ts"
import { MemoryReducer } from "../../src/transport/memoryReducer.ts"

interface SseClient {
  readonly kind: "sse"
  write(chunk: Uint8Array | string): void
  flush(): void
  end(): void
  pending: Uint8Array[]
  early: Frame[] | undefined
  closing: boolean
}
/** A socket's subscriptions: `sub` label → live channel. */
interface WsData { subs: Map<string, string> }

const port = Number(process.env.PORT ?? 0)
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const subscriber = new Redis(redisUrl)
const commands = new Redis(redisUrl) as Redis & { tsAppend: (...args: string[]) => Promise<(string | null)[]> }
commands.defineCommand("tsAppend", {
  numberOfKeys: 3,
  lua: readFileSync(process.env.APPEND_LUA ?? joinPath(import.meta.dir, "..", "..", "src", "log", "append.lua"), "utf8"),
})
const channels = new Map<string, Set<SseClient>>()
/** Per channel, the `sub` labels of WebSocket subscriptions and how many sockets hold each (topic `channel|sub`). */
const topics = new Map<string, Map<string, number>>()
const subscribing = new Map<string, Promise<unknown>>()
const dirty = new Set<SseClient>()
let flushScheduled = false
const reducer = new MemoryReducer(() => Bun.shrink())
/** What an idle client has pending: one frozen empty array for all. */
const NOTHING: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[]

const flush = (): void => {
  flushScheduled = false
  for (const client of dirty) {
    for (const bytes of client.pending) client.write(bytes)
    client.flush()
    client.pending = NOTHING
    if (client.closing) client.end()
  }
  dirty.clear()
}

const markDirty = (client: SseClient): void => {
  dirty.add(client)
  if (!flushScheduled) {
    flushScheduled = true
    setImmediate(flush)
  }
}

const listened = (channel: string): Promise<unknown> => {
  if (!subscribing.has(channel)) subscribing.set(channel, subscriber.subscribe(channel))
  return subscribing.get(channel)!
}

const unlisten = (channel: string): void => {
  if (channels.has(channel) || topics.has(channel)) return
  subscribing.delete(channel)
  void subscriber.unsubscribe(channel)
}

const join = async (channel: string, client: SseClient): Promise<void> => {
  let clients = channels.get(channel)
  if (!clients) channels.set(channel, (clients = new Set()))
  clients.add(client)
  reducer.changed()
  await listened(channel)
}

const leave = (channel: string, client: SseClient): void => {
  const clients = channels.get(channel)
  if (!clients?.delete(client)) return
  reducer.changed()
  if (clients.size > 0) return
  channels.delete(channel)
  unlisten(channel)
}

const joinTopic = async (channel: string, sub: string): Promise<void> => {
  let subs = topics.get(channel)
  if (!subs) topics.set(channel, (subs = new Map()))
  subs.set(sub, (subs.get(sub) ?? 0) + 1)
  reducer.changed()
  await listened(channel)
}

const leaveTopic = (channel: string, sub: string): void => {
  const subs = topics.get(channel)
  const left = (subs?.get(sub) ?? 0) - 1
  if (!subs || left < 0) return
  reducer.changed()
  if (left > 0) return void subs.set(sub, left)
  subs.delete(sub)
  if (subs.size > 0) return
  topics.delete(channel)
  unlisten(channel)
}

subscriber.on("message", (channel: string, envelope: string) => {
  const frame = frameOfEnvelope(envelope)
  const terminal = TERMINAL.has(frame.type)
  for (const sub of topics.get(channel)?.keys() ?? []) {
    const topic = `${channel}|${sub}`
    server.publish(topic, `{"op":"event","sub":${JSON.stringify(sub)},"event":${envelope}}`)
    if (terminal) server.publish(topic, `{"op":"end","sub":${JSON.stringify(sub)},"reason":"${frame.type}"}`)
  }
  const clients = channels.get(channel)
  if (!clients) return
  const bytes = Buffer.from(frame.text)
  for (const client of clients) {
    if (client.early) {
      client.early.push(frame)
      continue
    }
    if (client.pending === NOTHING) client.pending = [bytes]
    else client.pending.push(bytes)
    if (terminal) client.closing = true
    markDirty(client)
  }
  if (terminal) for (const client of [...clients]) leave(channel, client)
})

const ingest = async (request: Request, agentId: string, taskId: string): Promise<Response> => {
  const event = JSON.parse(await request.text()) as { type: string; data: unknown }
  const ids = await commands.tsAppend(...appendArgs({ agentId, taskId }, event.type, JSON.stringify(event.data)))
  return Response.json({ ids }, { status: 201 })
}

const streamResponse = (request: Request, taskId: string, history: boolean, lastEventId: string | null): Response => {
  const channel = liveChannel(taskId)
  let client: SseClient | undefined
  let finish: () => void = () => {}
  const body = new ReadableStream({
    type: "direct",
    async pull(controller: { write(c: Uint8Array | string): void; flush(): void; close(): void }) {
      const done = new Promise<void>((resolve) => { finish = resolve })
      const sse: SseClient = {
        kind: "sse",
        write: (chunk) => controller.write(chunk),
        flush: () => controller.flush(),
        end: () => { controller.close(); finish() },
        pending: NOTHING,
        early: history ? [] : undefined,
        closing: false,
      }
      client = sse
      await join(channel, sse)
      controller.write(RETRY_FRAME)
      controller.flush()
      if (history) {
        const from = lastEventId ? `(${lastEventId}` : "-"
        const stored = framesOfEntries((await commands.xrange(logKey(taskId), from, "+")) as [string, string[]][])
        const lastId = stored.at(-1)?.id ?? lastEventId ?? "0-0"
        const live = (sse.early ?? []).filter((f) => !f.id || idAfter(f.id, lastId))
        sse.early = undefined
        const all = stored.concat(live)
        if (all.length > 0) {
          controller.write(all.map((f) => f.text).join(""))
          controller.flush()
        }
        if (all.some((f) => TERMINAL.has(f.type))) {
          leave(channel, sse)
          sse.end()
        }
      }
      await done
    },
    cancel() {
      if (client) leave(channel, client)
      finish()
    },
  } as unknown as UnderlyingDefaultSource)
  request.signal.addEventListener("abort", () => { if (client) leave(channel, client); finish() })
  return new Response(body, { headers: SSE_HEADERS })
}

const server = Bun.serve<WsData>({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  fetch(request, server) {
    const url = new URL(request.url)
    if (url.pathname === "/api/v1/ws") {
      return server.upgrade(request, { data: { subs: new Map() } }) ? undefined : new Response("upgrade failed", { status: 400 })
    }
    if (request.method === "POST") {
      const target = parseIngestRoute(url)
      return target ? ingest(request, target.agentId, target.taskId) : new Response("not found", { status: 404 })
    }
    const route = parseStreamRoute(url)
    if (!route) return new Response("not found", { status: 404 })
    const lastEventId = request.headers.get("last-event-id")
    return streamResponse(request, route.taskId, lastEventId !== null || url.searchParams.get("include_history") !== "false", lastEventId)
  },
  websocket: {
    async message(ws, message) {
      const op = JSON.parse(String(message)) as { op: string; sub: string; taskId: string }
      if (op.op !== "subscribe") return
      const channel = liveChannel(op.taskId)
      if (ws.data.subs.has(op.sub)) return
      ws.data.subs.set(op.sub, channel)
      ws.subscribe(`${channel}|${op.sub}`)
      await joinTopic(channel, op.sub)
      ws.send(JSON.stringify({ op: "subscribed", sub: op.sub }))
    },
    close(ws) {
      for (const [sub, channel] of ws.data.subs) leaveTopic(channel, sub)
    },
  },
})

announce(server.port!)
process.on("SIGTERM", () => {
  server.stop(true)
  subscriber.disconnect()
  commands.disconnect()
  process.exit(0)
})
