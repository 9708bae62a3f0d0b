/** The Bun entry (main runtime): the only file of the Bun side that touches `Bun.*`. */
import type { Server, ServerWebSocket } from "bun"
import { Effect } from "effect"
import { upgradeWebSocket, websocket } from "hono/bun"
import { runGateway } from "./gateway.ts"
import type { RuntimeBindings } from "./http/deps.ts"
import { directSseBody } from "./transport/sseBody.ts"

/** The server, once serving: WebSocket topics publish through it. */
let server: Server<unknown> | undefined

runGateway({
  serve: (app, config) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        server = Bun.serve({
          port: config.port,
          hostname: config.host,
          fetch: (request, server) =>
            app.fetch(request, {
              clientAddress: server.requestIP(request)?.address,
              server,
              keepOpen: () => server.timeout(request, 0),
              // SSE bodies as Bun's direct streams: no web-stream machinery per connection.
              sseBody: directSseBody
            } satisfies RuntimeBindings),
          // Idle keep-alive sockets and requests whose body never comes are closed; streaming responses opt out (keepOpen).
          idleTimeout: config.httpIdleTimeoutSeconds,
          websocket: {
            ...websocket,
            // Frames over the limit are refused by Bun with close code 1009 before they reach the app.
            maxPayloadLength: config.maxEventBytes,
            // Bun pings a silent socket shortly before the idle timeout and closes it if no pong (or frame) comes.
            sendPings: true,
            idleTimeout: config.wsIdleTimeoutSeconds,
            // The app enforces CLIENT_BUFFER_BYTES itself (close 4008: after each write of its own, and
            // after each turn in which a socket's topics published). Bun's own limit is a last resort far
            // above it, and closes the socket: over it, a frame published to a topic would be dropped.
            backpressureLimit: config.clientBufferBytes * 16,
            closeOnBackpressureLimit: true
          }
        })
      ),
      // The drain has ended every response; let the runtime send what they still hold (the
      // terminating chunk included, so clients see an end, not a reset), then cut those that do not read.
      (server) =>
        Effect.promise(() => server.stop(false)).pipe(
          Effect.timeoutOption(config.drainMs / 2),
          Effect.andThen(Effect.promise(() => server.stop(true)))
        )
    ).pipe(Effect.map((server) => server.port ?? config.port)),
  bundle: async (entry) => {
    const build = await Bun.build({ entrypoints: [entry], target: "browser", format: "esm", minify: true })
    if (!build.success) throw new AggregateError(build.logs, `bundling ${entry} failed`)
    return build.outputs[0].text()
  },
  // JavaScriptCore's collection, its compiled code dropped, and the free pages returned to the OS.
  reduceMemory: () => Bun.shrink(),
  webSockets: () => ({
    upgradeWebSocket,
    wireSocket: (ws) => {
      const socket = ws.raw as ServerWebSocket
      return {
        // Cork: the frames of one turn leave in one write.
        send: (frames) => socket.cork(() => frames.every((frame) => socket.send(frame) !== 0)),
        bufferedAmount: () => socket.getBufferedAmount(),
        close: (code, reason) => socket.close(code, reason),
        subscribe: (topic) => socket.subscribe(topic),
        unsubscribe: (topic) => socket.unsubscribe(topic)
      }
    },
    publish: (topic, frame) => void server?.publish(topic, frame)
  })
})
