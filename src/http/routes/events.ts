/**
 * A task's events as JSON (SPEC §4.2): `GET …/events` pages through history,
 * `POST …/events` appends one event or an all-or-nothing batch. Bad input is
 * answered 4xx naming the field, and changes nothing stored.
 */
import { Effect, Result } from "effect"
import { Hono } from "hono"
import { decodeDraft, type EventDraft } from "../../events/draft.ts"
import { compareIds, ZeroId } from "../../events/envelope.ts"
import type { LogEvent } from "../../events/envelope.ts"
import type { RouteDeps } from "../deps.ts"
import { type ApiError, apiError, errorResponse } from "../errors.ts"
import { EventLog, ownedByOther, TaskNotFound } from "../../log/EventLog.ts"
import { guard } from "../guard.ts"
import { unsupportedContentType } from "../json.ts"
import { parseAll, parseLimit, parseOptionalEventId, parseTaskPath, parseTypes } from "../params.ts"
import { respond } from "../respond.ts"
import { appendAll, bodyLimitOf, overRate, overTaskQuota, readJson, sizeError } from "../publishing.ts"

const EVENTS_PATH = "/agents/:agentId/tasks/:taskId/events"
const HISTORY_LIMIT_MAX = 1000

/** Validate a parsed body: one draft or a non-empty batch of them. */
const decodeBody = (body: unknown, deps: RouteDeps): Result.Result<Array<EventDraft>, ApiError> => {
  const { config } = deps
  const batch = Array.isArray(body)
  const items: Array<unknown> = batch ? body : [body]
  if (items.length === 0) return Result.fail(apiError("invalid_event", "the batch is empty", "body"))
  if (items.length > config.maxBatchEvents) {
    return Result.fail(apiError("invalid_event", `a batch holds at most ${config.maxBatchEvents} events`, "body"))
  }
  const drafts: Array<EventDraft> = []
  for (let i = 0; i < items.length; i++) {
    const prefix = batch ? `[${i}]` : ""
    const draft = decodeDraft(deps.registry, items[i], prefix)
    if (Result.isFailure(draft)) {
      const { field, message } = draft.failure
      return Result.fail(apiError("invalid_event", `${field}: ${message}`, field))
    }
    const tooLarge = sizeError(draft.success, prefix === "" ? "data" : `${prefix}.data`, config)
    if (tooLarge !== undefined) return Result.fail(tooLarge)
    drafts.push(draft.success)
  }
  return Result.succeed(drafts)
}

export const eventRoutes = (deps: RouteDeps) => {
  const { config } = deps
  return new Hono()
    .get(EVENTS_PATH, async (c) => {
      const query = c.req.query()
      const parsed = parseAll({
        path: parseTaskPath(c.req.param("agentId"), c.req.param("taskId")),
        after: parseOptionalEventId(query.after, "after"),
        limit: parseLimit(query.limit, "limit", 100, HISTORY_LIMIT_MAX),
        types: parseTypes(query.types, deps.registry)
      })
      if (!parsed.ok) return errorResponse(c, parsed.error)
      const { path, after, limit, types } = parsed.value
      const principal = await guard(c, deps, "subscribe", path)
      if (Result.isFailure(principal)) return principal.failure
      return respond(
        c,
        deps,
        Effect.gen(function*() {
          const log = yield* EventLog
          const head = yield* log.head(path.taskId)
          if (ownedByOther(head, path.agentId)) return yield* new TaskNotFound(path)
          const events: Array<LogEvent> = []
          let position = after ?? ZeroId
          // Scan pages until `limit` events pass the filter or the log is exhausted.
          while (events.length < limit && head.last !== undefined && compareIds(position, head.last) < 0) {
            const page = yield* log.read(path.taskId, position, Math.max(limit, 100))
            if (page.length === 0) break
            for (const event of page) {
              position = event
              if (types(event.type)) events.push(event)
              if (events.length === limit) break
            }
          }
          const next = events.length === limit ? JSON.stringify(events[events.length - 1].id) : "null"
          return new Response(`{"events":[${events.map((event) => event.json).join(",")}],"next":${next}}`, {
            headers: { "content-type": "application/json" }
          })
        })
      )
    })
    .post(
      EVENTS_PATH,
      bodyLimitOf(config),
      async (c) => {
        const path = parseTaskPath(c.req.param("agentId"), c.req.param("taskId"))
        if (!path.ok) return errorResponse(c, path.error)
        const principal = await guard(c, deps, "publish", path.value)
        if (Result.isFailure(principal)) return principal.failure
        const notJson = unsupportedContentType(c.req.header("content-type"))
        if (notJson !== undefined) return errorResponse(c, notJson)
        const body = await readJson(c)
        if (Result.isFailure(body)) return body.failure
        const drafts = decodeBody(body.success, deps)
        if (Result.isFailure(drafts)) return errorResponse(c, drafts.failure)
        const limited = overRate(c, deps, principal.success, drafts.success.length) ??
          overTaskQuota(c, deps, principal.success, [path.value])
        if (limited !== undefined) return limited
        const task = path.value
        return appendAll(c, deps, drafts.success.map((draft) => ({ task, draft })))
      }
    )
}
