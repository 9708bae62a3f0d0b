/** `GET /agents/{agentId}/tasks/{taskId}/state` — the task folded into one object (SPEC §9.1). */
import { Effect, Result } from "effect"
import { Hono } from "hono"
import { TaskStates } from "../../stream/TaskStates.ts"
import type { RouteDeps } from "../deps.ts"
import { errorResponse } from "../errors.ts"
import { guard } from "../guard.ts"
import { parseTaskPath } from "../params.ts"
import { respond } from "../respond.ts"

export const stateRoutes = (deps: RouteDeps) =>
  new Hono().get("/agents/:agentId/tasks/:taskId/state", async (c) => {
    const path = parseTaskPath(c.req.param("agentId"), c.req.param("taskId"))
    if (!path.ok) return errorResponse(c, path.error)
    const principal = await guard(c, deps, "subscribe", path.value)
    if (Result.isFailure(principal)) return principal.failure
    return respond(c, deps, Effect.gen(function*() {
      return c.json(yield* (yield* TaskStates).current(path.value))
    }))
  })
