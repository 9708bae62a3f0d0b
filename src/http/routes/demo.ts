/**
 * `POST /demo` — start the demo agent on a new task in this gateway
 * (DEMO=1): `201 {agentId, taskId}`. Its events go through the gateway's own
 * log like any publisher's, so every client sees them.
 */
import { Result } from "effect"
import { Hono } from "hono"
import { MAX_DEMO_RUNS, newDemoTask } from "../../demo/runs.ts"
import type { RouteDeps } from "../deps.ts"
import { apiError, errorResponse } from "../errors.ts"
import { guard } from "../guard.ts"
import { unsupportedContentType } from "../json.ts"

export const demoRoutes = (deps: RouteDeps) =>
  new Hono().post("/demo", async (c) => {
    if (!deps.config.demo) return errorResponse(c, apiError("not_found", "the demo agent is off; start the gateway with DEMO=1"))
    const notJson = unsupportedContentType(c.req.header("content-type"), true)
    if (notJson !== undefined) return errorResponse(c, notJson)
    const task = newDemoTask()
    const allowed = await guard(c, deps, "publish", task)
    if (Result.isFailure(allowed)) return allowed.failure
    if (deps.demos.full) return errorResponse(c, apiError("too_many_demos", `${MAX_DEMO_RUNS} demo agents are already running`))
    deps.demos.start(task)
    return c.json(task, 201)
  })
