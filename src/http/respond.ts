/**
 * Runs a route's Effect and turns domain failures into API errors: one
 * mapping for every route, so a failure looks the same wherever it happens.
 */
import { Cause, Effect, Exit } from "effect"
import type { Context } from "hono"
import type { InvalidEvent } from "../events/draft.ts"
import {
  type AgentMismatch,
  describeAppendError,
  type LogUnavailable,
  type ReplicationTimeout,
  type TaskEnded,
  type TaskNotFound
} from "../log/EventLog.ts"
import type { RouteDeps, RouteServices } from "./deps.ts"
import { type ApiError, apiError, errorResponse } from "./errors.ts"

export type DomainError = LogUnavailable | AgentMismatch | TaskEnded | TaskNotFound | InvalidEvent | ReplicationTimeout

export const toApiError = (error: DomainError): ApiError => {
  switch (error._tag) {
    case "LogUnavailable":
      return apiError("log_unavailable", "the event log is unavailable; retry shortly")
    case "TaskNotFound":
      return apiError("not_found", `task ${error.taskId} not found for agent ${error.agentId}`)
    default: {
      const { code, message, field } = describeAppendError(error)
      return apiError(code, message, field)
    }
  }
}

export const respond = async (c: Context, deps: RouteDeps, effect: Effect.Effect<Response, DomainError, RouteServices>): Promise<Response> => {
  const exit = await deps.runtime.exit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return errorResponse(c, toApiError(failure.error))
  console.error(JSON.stringify({ level: "error", message: "route failed", cause: Cause.pretty(exit.cause) }))
  return errorResponse(c, apiError("internal", "internal error"))
}
