/** The Bun entry (main runtime): the only file of the Bun side that touches `Bun.*`. */
import { Effect } from "effect"
import { runGateway } from "./gateway.ts"

runGateway((app, config) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      Bun.serve({
        port: config.port,
        hostname: config.host,
        fetch: app.fetch,
        // Streams are long-lived and may be quiet for a while: never cut them for idleness.
        idleTimeout: 0
      })
    ),
    (server) => Effect.promise(() => server.stop(true))
  ).pipe(Effect.map((server) => server.port ?? config.port))
)
