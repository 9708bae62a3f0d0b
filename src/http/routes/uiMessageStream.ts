/**
 * `GET /agents/{agentId}/tasks/{taskId}/ui-message-stream` — the task as the
 * AI SDK's UI message stream (SPEC §9.3), for `useChat({resume: true})`:
 * from its first event, then live. A task that has ended answers 204, the
 * SDK's "nothing to resume", unless `?replay=true`.
 */
import { Effect } from "effect"
import { Hono } from "hono"
import { UI_MESSAGE_STREAM_HEADERS, UiMessageStreamCodec } from "../../transport/codecs/uiMessageStream.ts"
import type { RouteDeps } from "../deps.ts"
import { errorResponse } from "../errors.ts"
import { parseAll, parseBoolean, parseTaskPath } from "../params.ts"
import { serveStream } from "./stream.ts"

export const uiMessageStreamRoutes = (deps: RouteDeps) =>
  new Hono().get("/agents/:agentId/tasks/:taskId/ui-message-stream", (c) => {
    const parsed = parseAll({
      path: parseTaskPath(c.req.param("agentId"), c.req.param("taskId")),
      replay: parseBoolean(c.req.query("replay"), "replay", false)
    })
    if (!parsed.ok) return errorResponse(c, parsed.error)
    const { path, replay } = parsed.value
    return serveStream(c, deps, {
      request: { ...path, history: true },
      headers: UI_MESSAGE_STREAM_HEADERS,
      codec: (opening) => Effect.succeed(opening.ended && !replay ? undefined : new UiMessageStreamCodec(path.taskId))
    })
  })
