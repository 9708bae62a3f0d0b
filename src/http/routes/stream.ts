/** `GET /agents/{agentId}/tasks/{taskId}/events/stream` — a task's events over SSE (SPEC §4.1). */
import { Effect, Exit, Result, Scope } from "effect"
import { Hono } from "hono"
import { SSE_HEADERS, SseConnection } from "../../transport/sse.ts"
import type { RouteDeps } from "../deps.ts"
import { apiError, errorResponse } from "../errors.ts"
import { admissionError, guard } from "../guard.ts"
import { parseAll, parseBoolean, parseChoice, parseOptionalEventId, parseTaskPath, parseTypes } from "../params.ts"
import { respond } from "../respond.ts"

export const streamRoutes = (deps: RouteDeps) =>
  new Hono().get("/agents/:agentId/tasks/:taskId/events/stream", async (c) => {
    const { config, streams, connections, lifecycle } = deps
    const query = c.req.query()
    // On reconnect EventSource sends the header; it is newer than a query parameter baked into the URL.
    const header = c.req.header("last-event-id")
    const parsed = parseAll({
      path: parseTaskPath(c.req.param("agentId"), c.req.param("taskId")),
      history: parseBoolean(query.include_history, "include_history", true),
      types: parseTypes(query.types),
      format: parseChoice(query.format, "format", ["payload", "envelope"]),
      after: header !== undefined && header !== ""
        ? parseOptionalEventId(header, "Last-Event-ID")
        : parseOptionalEventId(query.last_event_id, "last_event_id")
    })
    if (!parsed.ok) return errorResponse(c, parsed.error)
    const { path, history, types, format, after } = parsed.value
    const principal = await guard(c, deps, "subscribe", path)
    if (Result.isFailure(principal)) return principal.failure
    if (lifecycle.draining) return errorResponse(c, apiError("draining", "this instance is shutting down; reconnect"))
    const admission = connections.admit(principal.success.subject)
    if (!admission.ok) return errorResponse(c, admissionError(admission.limit))

    const response = await respond(
      c,
      Effect.gen(function*() {
        const opening = yield* streams.open({ ...path, after, history, filter: types })
        // 204 tells EventSource to stop reconnecting: the task ended at or before the resume point.
        if (opening._tag === "Ended") return new Response(null, { status: 204 })
        const scope = Scope.makeUnsafe()
        const connection: SseConnection = new SseConnection({
          format,
          subject: principal.success.subject,
          expiresAt: principal.success.expiresAt,
          retryMs: config.retryMs,
          bufferBytes: config.clientBufferBytes,
          onClose: (reason) => {
            connections.remove(connection, reason)
            admission.release()
            Effect.runFork(Scope.close(scope, Exit.void))
          }
        })
        connections.add(connection)
        Effect.runFork(Scope.provide(opening.start(connection), scope))
        return new Response(connection.body, { status: 200, headers: SSE_HEADERS })
      })
    )
    if (response.status !== 200) admission.release()
    return response
  })
