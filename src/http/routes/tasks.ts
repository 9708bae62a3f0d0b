/** `GET /tasks?agent=&limit=` — recently active tasks, newest first (SPEC §4.2); only those the bearer may subscribe to. */
import { Effect, Result } from "effect"
import { Hono } from "hono"
import { TaskIndex } from "../../log/TaskIndex.ts"
import type { RouteDeps } from "../deps.ts"
import { apiError, errorResponse } from "../errors.ts"
import { authenticate } from "../guard.ts"
import { ID_PATTERN, parseLimit } from "../params.ts"
import { respond } from "../respond.ts"

const TASKS_LIMIT_MAX = 1000

export const taskRoutes = (deps: RouteDeps) =>
  new Hono().get("/tasks", async (c) => {
    const agent = c.req.query("agent") || undefined
    if (agent !== undefined && !ID_PATTERN.test(agent)) {
      return errorResponse(c, apiError("invalid_query", "agent must be 1-128 characters of [A-Za-z0-9._:-]", "agent"))
    }
    const limit = parseLimit(c.req.query("limit"), "limit", 50, TASKS_LIMIT_MAX)
    if (!limit.ok) return errorResponse(c, limit.error)
    const principal = await authenticate(c, deps)
    if (Result.isFailure(principal)) return principal.failure
    const visible = principal.success
    return respond(
      c,
      deps,
      Effect.gen(function*() {
        const tasks = yield* (yield* TaskIndex).tasks(agent, limit.value)
        return c.json({ tasks: tasks.filter((task) => visible.may("subscribe", task.agentId, task.taskId)) })
      })
    )
  })
