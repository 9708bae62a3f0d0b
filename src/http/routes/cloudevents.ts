/**
 * `POST /cloudevents` (SPEC §10.1): CloudEvents in structured
 * (`application/cloudevents+json`), batch (`application/cloudevents-batch+json`)
 * and binary mode (`ce-*` headers, JSON body = data). Every event is checked
 * and authorised (publish scope on its task) before anything is appended; a
 * batch naming several tasks is appended per task (see `appendAll`), and a
 * retry of the whole batch appends nothing twice (`id` + `source`).
 */
import { Result } from "effect"
import { type Context, Hono } from "hono"
import { decodeCloudEvent, fromBinary } from "../../ingest/cloudevents.ts"
import { isJsonMediaType, type Published } from "../../ingest/published.ts"
import type { RouteDeps } from "../deps.ts"
import { type ApiError, apiError, errorResponse } from "../errors.ts"
import { parseJson } from "../json.ts"
import { authenticate } from "../guard.ts"
import { noteRefusal } from "../auth.ts"
import { appendAll, bodyLimitOf, overRate, overTaskQuota, readJson, sizeError } from "../publishing.ts"

const STRUCTURED = /^application\/cloudevents\+json\s*(;|$)/i
const BATCH = /^application\/cloudevents-batch\+json\s*(;|$)/i

/** The events of a request in the JSON format, with their batch prefixes; or the error answer. */
const eventsOf = async (c: Context): Promise<Result.Result<Array<[unknown, string]>, Response | ApiError>> => {
  const contentType = c.req.header("content-type") ?? ""
  if (c.req.header("ce-specversion") !== undefined) {
    if (contentType !== "" && !isJsonMediaType(contentType)) {
      return Result.fail(apiError("unsupported_media_type", `binary mode takes JSON data, not '${contentType.slice(0, 64)}'`, "datacontenttype"))
    }
    const text = await c.req.text()
    if (text.trim() === "") return Result.succeed([[fromBinary(c.req.raw.headers, undefined), ""]])
    const data = parseJson(text, "data")
    if (Result.isFailure(data)) return Result.fail(data.failure)
    return Result.succeed([[fromBinary(c.req.raw.headers, data.success), ""]])
  }
  const batch = BATCH.test(contentType)
  if (!batch && !STRUCTURED.test(contentType)) {
    return Result.fail(apiError(
      "unsupported_media_type",
      `content-type must be application/cloudevents+json, application/cloudevents-batch+json, or a binary-mode event with ce-* headers; not '${contentType.slice(0, 64)}'`,
      "content-type"
    ))
  }
  const body = await readJson(c)
  if (Result.isFailure(body)) return Result.fail(body.failure)
  if (!batch) return Result.succeed([[body.success, ""]])
  if (!Array.isArray(body.success)) return Result.fail(apiError("invalid_event", "a batch is a JSON array of CloudEvents", "body"))
  return Result.succeed(body.success.map((event, i): [unknown, string] => [event, `[${i}]`]))
}

export const cloudEventRoutes = (deps: RouteDeps) => {
  const { config } = deps
  return new Hono().post("/cloudevents", bodyLimitOf(config), async (c) => {
    const principal = await authenticate(c, deps)
    if (Result.isFailure(principal)) return principal.failure
    const events = await eventsOf(c)
    if (Result.isFailure(events)) return events.failure instanceof Response ? events.failure : errorResponse(c, events.failure)
    if (events.success.length === 0) return errorResponse(c, apiError("invalid_event", "the batch is empty", "body"))
    if (events.success.length > config.maxBatchEvents) {
      return errorResponse(c, apiError("invalid_event", `a batch holds at most ${config.maxBatchEvents} events`, "body"))
    }
    const published: Array<Published> = []
    for (const [input, prefix] of events.success) {
      const event = decodeCloudEvent(deps.registry, input, prefix)
      if (Result.isFailure(event)) {
        const { field, message } = event.failure
        return errorResponse(c, apiError("invalid_event", `${field}: ${message}`, field))
      }
      const tooLarge = sizeError(event.success.draft, prefix === "" ? "data" : `${prefix}.data`, config)
      if (tooLarge !== undefined) return errorResponse(c, tooLarge)
      const { agentId, taskId } = event.success.task
      if (!principal.success.may("publish", agentId, taskId)) {
        const error = apiError("forbidden", `the token does not allow publish on ${agentId}/${taskId}`, prefix === "" ? "taskid" : `${prefix}.taskid`)
        noteRefusal(c, deps, error, principal.success.subject)
        return errorResponse(c, error)
      }
      published.push(event.success)
    }
    const limited = overRate(c, deps, principal.success, published.length) ??
      overTaskQuota(c, deps, principal.success, published.map(({ task }) => task))
    if (limited !== undefined) return limited
    return appendAll(c, deps, published)
  })
}
