/** `GET /event-types` — the event registry with a JSON Schema per type (SPEC §10.2); any valid token may read it. */
import { Result } from "effect"
import { Hono } from "hono"
import { catalogue } from "../../events/catalogue.ts"
import type { RouteDeps } from "../deps.ts"
import { authenticate } from "../guard.ts"

export const eventTypeRoutes = (deps: RouteDeps) => {
  // The registry is fixed once the gateway has started: serialise it once.
  const body = JSON.stringify(catalogue(deps.registry))
  return new Hono().get("/event-types", async (c) => {
    const principal = await authenticate(c, deps)
    if (Result.isFailure(principal)) return principal.failure
    return c.body(body, 200, { "content-type": "application/json" })
  })
}
