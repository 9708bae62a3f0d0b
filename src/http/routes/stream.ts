/** `GET /agents/{agentId}/tasks/{taskId}/events/stream` — a task's events over SSE (SPEC §4.1). */
import { Effect, Exit, Result, Scope } from "effect"
import { Hono } from "hono"
import { SSE_HEADERS, SseConnection, type SseFormat } from "../../transport/sse.ts"
import type { Principal } from "../auth.ts"
import type { RouteDeps } from "../deps.ts"
import { errorResponse } from "../errors.ts"
import { admissionError, drainingError, guard } from "../guard.ts"
import { parseAll, parseBoolean, parseChoice, parseOptionalEventId, parseTaskPath, parseTypes } from "../params.ts"
import { respond } from "../respond.ts"

/**
 * Start following an opened task into a new SSE response. Module-level on
 * purpose: the connection's closures must hold only what they use, not the
 * request handler's scope (which would keep every request alive as long as
 * its stream — kilobytes per idle connection).
 */
const openStream = (
  { config, connections }: RouteDeps,
  start: (sink: SseConnection) => Effect.Effect<unknown, never, Scope.Scope>,
  principal: Principal,
  format: SseFormat,
  release: () => void
): Response => {
  const scope = Scope.makeUnsafe()
  const connection: SseConnection = new SseConnection({
    format,
    subject: principal.subject,
    expiresAt: principal.expiresAt,
    retryMs: config.retryMs,
    bufferBytes: config.clientBufferBytes,
    onClose: (reason) => {
      connections.remove(connection, reason)
      release()
      Effect.runFork(Scope.close(scope, Exit.void))
    }
  })
  connections.add(connection)
  // Forked into the connection's scope: a client that leaves also interrupts a catch-up still retrying.
  Effect.runFork(Effect.forkIn(Scope.provide(start(connection), scope), scope))
  return new Response(connection.body, { status: 200, headers: SSE_HEADERS })
}

export const streamRoutes = (deps: RouteDeps) =>
  new Hono().get("/agents/:agentId/tasks/:taskId/events/stream", async (c) => {
    const { streams, connections, lifecycle } = deps
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
    if (lifecycle.draining) return errorResponse(c, drainingError)
    const admission = connections.admit(principal.success.subject)
    if (!admission.ok) return errorResponse(c, admissionError(admission.limit))

    const response = await respond(
      c,
      Effect.map(streams.open({ ...path, after, history, filter: types }), (opening) =>
        // 204 tells EventSource to stop reconnecting: the task ended at or before the resume point.
        opening._tag === "Ended"
          ? new Response(null, { status: 204 })
          : openStream(deps, opening.start, principal.success, format, admission.release))
    )
    if (response.status !== 200) admission.release()
    return response
  })
