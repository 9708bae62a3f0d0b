/**
 * What every publishing route shares (SPEC §4.2, §10.1): the body size limit,
 * JSON parsing, the per-event size check, the publish rate and task quota, and appending
 * events that may name several tasks.
 */
import { Result } from "effect"
import type { Context, MiddlewareHandler } from "hono"
import { bodyLimit } from "hono/body-limit"
import { dataSize, type EventDraft } from "../events/draft.ts"
import type { Published } from "../ingest/published.ts"
import type { TaskRef } from "../log/EventLog.ts"
import { Metrics } from "../observability/metrics.ts"
import type { Principal } from "./auth.ts"
import type { RouteDeps } from "./deps.ts"
import { type ApiError, apiError, errorResponse } from "./errors.ts"
import { parseJson } from "./json.ts"
import { toApiError } from "./respond.ts"

/**
 * MAX_BODY_BYTES. A body with a Content-Length is judged by it, without
 * touching `request.body` (which costs a web stream per request on Bun; the
 * runtime reads no more than the declared length); a chunked body is counted
 * as it is read, by hono's `bodyLimit`.
 */
export const bodyLimitOf = (config: RouteDeps["config"]): MiddlewareHandler => {
  const onError = (c: Context) =>
    errorResponse(c, apiError("payload_too_large", `the body is over MAX_BODY_BYTES (${config.maxBodyBytes})`, "body"))
  const counted = bodyLimit({ maxSize: config.maxBodyBytes, onError })
  return (c, next) => {
    const headers = c.req.raw.headers
    const length = headers.get("content-length")
    if (length === null || headers.has("transfer-encoding")) return counted(c, next)
    return parseInt(length, 10) > config.maxBodyBytes ? Promise.resolve(onError(c)) : next()
  }
}

/** The body as JSON (its nesting bounded first), or the 400 answer naming it. */
export const readJson = async (c: Context, field = "body"): Promise<Result.Result<unknown, Response>> => {
  const parsed = parseJson(await c.req.text(), field)
  return Result.isFailure(parsed) ? Result.fail(errorResponse(c, parsed.failure)) : Result.succeed(parsed.success)
}

/** MAX_EVENT_BYTES applies to each event's `data`; `field` names it in the request. */
export const sizeError = (draft: EventDraft, field: string, config: RouteDeps["config"]): ApiError | undefined => {
  const size = dataSize(draft)
  return size > config.maxEventBytes
    ? apiError("payload_too_large", `${field} is ${size} bytes; MAX_EVENT_BYTES is ${config.maxEventBytes}`, field)
    : undefined
}

/** The 429 answer when the subject is over PUBLISH_RATE with `count` more events, else undefined. */
export const overRate = (c: Context, deps: RouteDeps, principal: Principal, count: number): Response | undefined => {
  const wait = deps.publishRate.take(principal.subject, count)
  if (wait <= 0) return undefined
  deps.metrics.record(Metrics.limitRejections, 1, { limit: "publish_rate" })
  return errorResponse(c, { ...apiError("rate_limited", `over PUBLISH_RATE (${deps.config.publishRate} events/s)`), retryAfter: wait })
}

/** The 429 answer when the subject is over TASKS_PER_HOUR with one of `tasks` new to it, else undefined. */
export const overTaskQuota = (c: Context, deps: RouteDeps, principal: Principal, tasks: Iterable<TaskRef>): Response | undefined => {
  for (const task of tasks) {
    const wait = deps.taskQuota.take(principal.subject, `${task.agentId}/${task.taskId}`)
    if (wait <= 0) continue
    deps.metrics.record(Metrics.limitRejections, 1, { limit: "tasks_per_hour" })
    return errorResponse(c, {
      ...apiError("too_many_tasks", `this subject published to TASKS_PER_HOUR (${deps.config.tasksPerHour}) tasks this hour`, "taskId"),
      retryAfter: wait
    })
  }
  return undefined
}

/**
 * Append events that may name several tasks and answer: one atomic append per
 * task, in the order each task first appears, then 201 with the ids in the
 * events' order — or the error of the first task refused (the tasks before it
 * stay appended). Plain async code, not an Effect: an ingest request runs no
 * fiber (docs/performance.md, "Issue 17, part 8").
 */
export const appendAll = async (c: Context, deps: RouteDeps, events: ReadonlyArray<Published>): Promise<Response> => {
  const groups = new Map<string, { task: Published["task"]; at: Array<number>; drafts: Array<EventDraft> }>()
  events.forEach(({ draft, task }, i) => {
    const key = `${task.agentId}/${task.taskId}`
    const group = groups.get(key) ?? { task, at: [], drafts: [] }
    group.at.push(i)
    group.drafts.push(draft)
    groups.set(key, group)
  })
  const ids: Array<string | null> = new Array(events.length)
  for (const group of groups.values()) {
    const appended = await deps.log.appendNow(group.task, group.drafts)
    if (Result.isFailure(appended)) return errorResponse(c, toApiError(appended.failure))
    appended.success.forEach((id, j) => {
      ids[group.at[j]] = id
    })
  }
  deps.metrics.record(Metrics.eventsAppended, ids.length)
  return c.json({ ids }, 201)
}
