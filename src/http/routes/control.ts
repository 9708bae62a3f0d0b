/**
 * `POST /agents/{a}/tasks/{t}/pause|resume|cancel` (SPEC §4.2, §5): queue a
 * control command for the task's workflow; `202 {command_id}`, through
 * `queueCommand` (http/commands.ts), which also serves the WebSocket `command` op.
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import { type Context, Hono } from "hono"
import { bodyLimit } from "hono/body-limit"
import { type CommandDraft, CommandKinds, REASON_MAX } from "../../events/control.ts"
import { IDEMPOTENCY_KEY_MAX } from "../../events/draft.ts"
import type { RouteDeps } from "../deps.ts"
import { overCommandRate, queueCommand } from "../commands.ts"
import { apiError, errorResponse } from "../errors.ts"
import { guard } from "../guard.ts"
import { parseJson, unsupportedContentType } from "../json.ts"
import { parseTaskPath } from "../params.ts"
import { respond } from "../respond.ts"

const Body = Schema.Struct({ reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(REASON_MAX))) })
const decodeBody = Schema.decodeUnknownResult(Body)
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()
const IdempotencyKey = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(IDEMPOTENCY_KEY_MAX))
const isIdempotencyKey = Schema.is(IdempotencyKey)

/**
 * One static route per command (not one `:command{pause|resume|cancel}` pattern): hono's
 * RegExpRouter refuses such a pattern beside the static `…/events` and `…/ag-ui`, and without
 * it the app falls back to the slower TrieRouter for every request.
 */
export const controlRoutes = (deps: RouteDeps) => {
  const routes = new Hono()
  const limit = bodyLimit({
    maxSize: deps.config.maxEventBytes,
    onError: (c) => errorResponse(c, apiError("payload_too_large", `the body is over MAX_EVENT_BYTES (${deps.config.maxEventBytes})`, "body"))
  })
  for (const command of CommandKinds) {
    routes.post(`/agents/:agentId/tasks/:taskId/${command}`, limit, (c) => queue(c, deps, command))
  }
  return routes
}

const queue = async (c: Context, deps: RouteDeps, command: CommandDraft["command"]): Promise<Response> => {
  const path = parseTaskPath(c.req.param("agentId"), c.req.param("taskId"))
  if (!path.ok) return errorResponse(c, path.error)
  const principal = await guard(c, deps, "control", path.value)
  if (Result.isFailure(principal)) return principal.failure
  const idempotencyKey = c.req.header("idempotency-key")
  if (idempotencyKey !== undefined && !isIdempotencyKey(idempotencyKey)) {
    return errorResponse(
      c,
      apiError("invalid_query", `Idempotency-Key must be 1-${IDEMPOTENCY_KEY_MAX} characters`, "Idempotency-Key")
    )
  }
  const text = await c.req.text()
  const notJson = unsupportedContentType(c.req.header("content-type"), text.trim() === "")
  if (notJson !== undefined) return errorResponse(c, notJson)
  let reason: string | undefined
  if (text.trim() !== "") {
    const json = parseJson(text)
    if (Result.isFailure(json)) return errorResponse(c, json.failure)
    const body = decodeBody(json.success, { onExcessProperty: "error" })
    if (Result.isFailure(body)) {
      const [first] = formatIssue(body.failure.issue).issues
      const field = ["body", ...(first?.path ?? []).map(String)].join(".")
      return errorResponse(c, apiError("invalid_json", `${field}: ${first?.message ?? "invalid"}`, field))
    }
    reason = body.success.reason
  }
  const limited = overCommandRate(deps, principal.success.subject)
  if (limited !== undefined) return errorResponse(c, limited)
  const draft: CommandDraft = {
    command,
    reason,
    source: "rest",
    idempotencyKey
  }
  return respond(
    c,
    deps,
    Effect.map(queueCommand(path.value, draft, principal.success.subject), (commandId) => c.json({ command_id: commandId }, 202))
  )
}
