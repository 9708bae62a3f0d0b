/**
 * `GET /agents/{agentId}/tasks/{taskId}/events/stream` — a task's events over
 * SSE (SPEC §4.1) — and `serveStream`, the part every SSE route shares
 * whatever its encoding (SPEC §9): auth, draining, connection limits, opening
 * the pipeline, 204 for a stream with nothing left to send, the response.
 */
import { Effect, Result } from "effect"
import type { Context } from "hono"
import { Hono } from "hono"
import { type FollowRequest, type Opening, TaskStream } from "../../stream/TaskStream.ts"
import { TaskstreamCodecs } from "../../transport/codecs/taskstream.ts"
import type { Admitted } from "../../transport/connections.ts"
import { type SseCodec, SSE_HEADERS, SseConnection } from "../../transport/sse.ts"
import type { SseBody } from "../../transport/sseBody.ts"
import type { Principal } from "../auth.ts"
import type { RouteDeps, RouteServices, RuntimeBindings } from "../deps.ts"
import { errorResponse } from "../errors.ts"
import { admissionError, drainingError, guard } from "../guard.ts"
import { parseAll, parseBoolean, parseChoice, parseOptionalEventId, parseTaskPath, parseTypes } from "../params.ts"
import { type DomainError, respond } from "../respond.ts"

type Ready = Extract<Opening, { _tag: "Ready" }>

/**
 * Start following an opened task into a new SSE response. Module-level on
 * purpose: the connection's closures must hold only what they use, not the
 * request handler's scope (which would keep every request alive as long as
 * its stream — kilobytes per idle connection). The connection owns its
 * subscription (no scope or fiber per connection: the subscription's
 * catch-ups are fibers of the gateway's set) and closes it when it closes.
 */
const openStream = (
  deps: RouteDeps,
  opening: Ready,
  principal: Principal,
  codec: SseCodec,
  headers: Record<string, string>,
  admission: Admitted,
  body: SseBody | undefined
): Response => {
  const connection = new SseConnection({
    codec,
    subject: principal.subject,
    expiresAt: principal.expiresAt,
    retryMs: deps.config.retryMs,
    bufferBytes: deps.config.clientBufferBytes,
    writes: deps.connections.writes,
    body,
    // Closing the stream leaves the connections, frees the place and closes the subscription.
    owner: deps.connections
  })
  const response = new Response(connection.body, { status: 200, headers })
  admission.handOver()
  try {
    deps.connections.add(connection)
    // Cut off as it opened (web streams: its first frames over CLIENT_BUFFER_BYTES), or by a drain
    // that began after this request passed its check: nothing to follow.
    if (!connection.isClosed) connection.feed = opening.follow(connection)
  } catch (error) {
    // Its place goes with it (a `follow` that throws closes its own subscription).
    connection.close("failed")
    throw error
  }
  return response
}

export interface StreamRoute {
  readonly request: FollowRequest
  /** The encoding of this response, built once the task is open; undefined answers 204 (nothing to send). */
  readonly codec: (opening: Ready) => Effect.Effect<SseCodec | undefined, DomainError, RouteServices>
  /** Headers beside the SSE ones (a protocol's marker). */
  readonly headers?: Record<string, string>
}

/** The shared door of every SSE route: subscribe scope, draining, limits, then the stream or 204. */
export const serveStream = async (c: Context, deps: RouteDeps, route: StreamRoute): Promise<Response> => {
  const { connections, lifecycle } = deps
  const principal = await guard(c, deps, "subscribe", route.request)
  if (Result.isFailure(principal)) return principal.failure
  if (lifecycle.draining) return errorResponse(c, drainingError)
  const admission = connections.admit(principal.success.subject)
  if (!admission.ok) return errorResponse(c, admissionError(admission.limit))
  const headers = { ...SSE_HEADERS, ...route.headers }
  const response = await respond(
    c,
    deps,
    Effect.gen(function*() {
      const opening = yield* (yield* TaskStream).open(route.request)
      // 204 tells EventSource to stop reconnecting: the task ended at or before the resume point.
      if (opening._tag === "Ended") return new Response(null, { status: 204 })
      const codec = yield* route.codec(opening)
      return codec === undefined
        ? new Response(null, { status: 204 })
        : openStream(deps, opening, principal.success, codec, headers, admission, (c.env as RuntimeBindings | undefined)?.sseBody)
    })
  )
  if (response.status !== 200) admission.release()
  return response
}

/** The resume point of an SSE request: `Last-Event-ID`, newer than a query parameter baked into the URL. */
export const parseResumePoint = (c: Context) => {
  const header = c.req.header("last-event-id")
  return header !== undefined && header !== ""
    ? parseOptionalEventId(header, "Last-Event-ID")
    : parseOptionalEventId(c.req.query("last_event_id"), "last_event_id")
}

export const streamRoutes = (deps: RouteDeps) =>
  new Hono().get("/agents/:agentId/tasks/:taskId/events/stream", (c) => {
    const query = c.req.query()
    const parsed = parseAll({
      path: parseTaskPath(c.req.param("agentId"), c.req.param("taskId")),
      history: parseBoolean(query.include_history, "include_history", true),
      types: parseTypes(query.types, deps.registry),
      format: parseChoice(query.format, "format", ["payload", "envelope"]),
      after: parseResumePoint(c)
    })
    if (!parsed.ok) return errorResponse(c, parsed.error)
    const { path, history, types, format, after } = parsed.value
    return serveStream(c, deps, {
      request: { ...path, after, history, filter: types },
      codec: () => Effect.succeed(TaskstreamCodecs[format])
    })
  })
