// Floor baseline: the straightforward design. Every SSE connection opens its own Redis
// subscriber and enqueues one encoded chunk per event into a ReadableStream.
import Redis from "ioredis"
import {
  announce, frameOfEnvelope, framesOfEntries, idAfter, liveChannel, logKey, parseStreamRoute,
  RETRY_FRAME, SSE_HEADERS, TERMINAL, type Frame,
} from "./frames.ts"

const port = Number(process.env.PORT ?? 0)
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const commands = new Redis(redisUrl)
const encoder = new TextEncoder()

const streamResponse = (request: Request, taskId: string, history: boolean): Response => {
  const redis = new Redis(redisUrl)
  let closed = false
  const close = (controller?: ReadableStreamDefaultController<Uint8Array>): void => {
    if (closed) return
    closed = true
    redis.disconnect()
    try { controller?.close() } catch { /* already closed by the client */ }
  }
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      let early: Frame[] | undefined = history ? [] : undefined
      const deliver = (frame: Frame): void => {
        if (closed) return
        controller.enqueue(encoder.encode(frame.text))
        if (TERMINAL.has(frame.type)) close(controller)
      }
      redis.on("message", (_channel: string, envelope: string) => {
        const frame = frameOfEnvelope(envelope)
        if (early) early.push(frame)
        else deliver(frame)
      })
      await redis.subscribe(liveChannel(taskId))
      controller.enqueue(encoder.encode(RETRY_FRAME))
      if (history) {
        const stored = framesOfEntries((await commands.xrange(logKey(taskId), "-", "+")) as [string, string[]][])
        const lastId = stored.at(-1)?.id ?? "0-0"
        const live = early!.filter((f) => !f.id || idAfter(f.id, lastId))
        early = undefined
        for (const frame of stored.concat(live)) deliver(frame)
      }
    },
    cancel() { close() },
  })
  request.signal.addEventListener("abort", () => close())
  return new Response(body, { headers: SSE_HEADERS })
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  fetch(request) {
    const url = new URL(request.url)
    const route = parseStreamRoute(url)
    if (!route) return new Response("not found", { status: 404 })
    return streamResponse(request, route.taskId, url.searchParams.get("include_history") !== "false")
  },
})

announce(server.port!)
process.on("SIGTERM", () => {
  server.stop(true)
  commands.disconnect()
  process.exit(0)
})
