/**
 * The Deno entry: the only file of the Deno side that touches `Deno.*`.
 *
 * Deno differs from Bun in ways this file absorbs: `Deno.serve` has no idle
 * cut-off on a response body (nothing to turn off); the WebSocket idle timeout
 * is an option of each upgrade, not of the server; a socket has no cork, so
 * the frames of one turn go out as consecutive sends; frames over
 * MAX_EVENT_BYTES reach the app, which closes the socket with 1009 itself;
 * `server.shutdown()` closes the WebSockets still open with 1001, so it waits
 * for the close handshakes of the drain (1012) first; and the dashboard's
 * bundler is Deno's unstable `Deno.bundle`.
 */
import { Effect } from "effect"
import { upgradeWebSocket } from "hono/deno"
import { runGateway } from "./gateway.ts"
import type { RuntimeBindings } from "./http/deps.ts"

/** How long shutdown waits for clients to answer the drain's close frames. */
const CLOSE_HANDSHAKE_MS = 1000

/** WebSockets whose close handshake has not finished, with when the gateway sent its close frame. */
const liveSockets = new Map<WebSocket, number | undefined>()

const track = (socket: WebSocket): WebSocket => {
  liveSockets.set(socket, undefined)
  socket.addEventListener("close", () => liveSockets.delete(socket), { once: true })
  return socket
}

/** The close handshakes started in the last CLOSE_HANDSHAKE_MS (the drain's); older ones have a client that stopped answering. */
const closeHandshakes = (): Promise<unknown> => {
  const since = Date.now() - CLOSE_HANDSHAKE_MS
  const closing = [...liveSockets].filter(([, closedAt]) => closedAt !== undefined && closedAt >= since)
  return Promise.all(closing.map(([socket]) => new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }))))
}

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
      (server) =>
        Effect.promise(closeHandshakes).pipe(
          // A client answers a close within a round trip; one that does not (it stopped reading) is not waited for long.
          Effect.timeoutOption(Math.min(CLOSE_HANDSHAKE_MS, config.drainMs / 4)),
          Effect.andThen(Effect.promise(() => server.shutdown())),
          Effect.timeoutOption(config.drainMs / 2)
        )
    ).pipe(Effect.map((server) => server.addr.port)),
  // Deno's bundler (for the dashboard) is unstable: present with --unstable-bundle, as `deno task start` runs it.
  // It fetches esbuild from npm into Deno's cache on first use.
  bundle: typeof Deno.bundle === "function"
    ? async (entry) => {
      const build = await Deno.bundle({ entrypoints: [entry], platform: "browser", format: "esm", minify: true, write: false })
      const output = build.outputFiles?.[0]
      if (!build.success || output === undefined) throw new AggregateError(build.errors, `bundling ${entry} failed`)
      return output.text()
    }
    : undefined,
  webSockets: (config) => ({
    // Deno pings a socket silent for half the idle timeout and closes it (1001) if nothing comes back in the other half.
    upgradeWebSocket: (c, events) => upgradeWebSocket(c, events, { idleTimeout: config.wsIdleTimeoutSeconds }),
    wireSocket: (ws) => {
      const socket = track(ws.raw as WebSocket)
      return {
        send: (frames) => {
          // A socket already closing drops what is sent: its close event follows and ends the connection.
          if (socket.readyState !== WebSocket.OPEN) return true
          for (const frame of frames) socket.send(frame)
          return true
        },
        bufferedAmount: () => socket.bufferedAmount,
        close: (code, reason) => {
          liveSockets.set(socket, Date.now())
          socket.close(code, reason)
        }
      }
    }
  })
})
