/**
 * The Deno entry: the only file of the Deno side that touches `Deno.*`.
 *
 * Deno differs from Bun in ways this file absorbs: `Deno.serve` has no idle
 * cut-off on a response body (nothing to turn off); the WebSocket idle timeout
 * is an option of each upgrade, not of the server; a socket has no cork, so
 * the frames of one turn go out as consecutive sends; and frames over
 * MAX_EVENT_BYTES reach the app, which closes the socket with 1009 itself.
 */
import { Effect } from "effect"
import { upgradeWebSocket } from "hono/deno"
import { type RuntimeBindings, runGateway } from "./gateway.ts"

runGateway({
  serve: (app, config) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        Deno.serve(
          {
            port: config.port,
            hostname: config.host,
            // The gateway logs its own listening line.
            onListen: () => {}
          },
          (request, info) => app.fetch(request, { clientAddress: info.remoteAddr.hostname } satisfies RuntimeBindings)
        )
      ),
      // The drain has closed the streams by now; shutdown waits for whatever is still answering.
      (server) => Effect.promise(() => server.shutdown()).pipe(Effect.timeoutOption(config.drainMs / 2))
    ).pipe(Effect.map((server) => server.addr.port)),
  webSockets: (config) => ({
    // Deno pings a socket silent for half the idle timeout and closes it (1001) if nothing comes back in the other half.
    upgradeWebSocket: (c, events) => upgradeWebSocket(c, events, { idleTimeout: config.wsIdleTimeoutSeconds }),
    wireSocket: (ws) => {
      const socket = ws.raw as WebSocket
      return {
        send: (frames) => {
          // A socket already closing drops what is sent: its close event follows and ends the connection.
          if (socket.readyState !== WebSocket.OPEN) return true
          for (const frame of frames) socket.send(frame)
          return true
        },
        bufferedAmount: () => socket.bufferedAmount,
        close: (code, reason) => socket.close(code, reason)
      }
    }
  })
})
