/**
 * `POST` (and `GET`) `/agents/{agentId}/tasks/{taskId}/ag-ui` — the task as an
 * AG-UI run (SPEC §9.2). Nothing is started: the body, an AG-UI
 * `RunAgentInput`, only names the thread and run to echo. Resumes after
 * `Last-Event-ID` like the SSE route; its state snapshot is the task's state
 * at the stream's start.
 */
import { Effect, Result, Schema } from "effect"
import { Hono } from "hono"
import type { Context } from "hono"
import { bodyLimit } from "hono/body-limit"
import { InitialState } from "../../events/state.ts"
import { TaskStates } from "../../stream/TaskStates.ts"
import { AgUiCodec, type AgUiRun } from "../../transport/codecs/agui.ts"
import type { RouteDeps } from "../deps.ts"
import { type ApiError, apiError, errorResponse } from "../errors.ts"
import { parseAll, parseBoolean, parseTaskPath } from "../params.ts"
import { parseResumePoint, serveStream } from "./stream.ts"

const AG_UI_PATH = "/agents/:agentId/tasks/:taskId/ag-ui"

/** The part of a RunAgentInput the route uses; the rest (messages, tools, state…) is accepted and ignored. */
const RunInput = Schema.Struct({
  threadId: Schema.optionalKey(Schema.String),
  runId: Schema.optionalKey(Schema.String)
})
const decodeRunInput = Schema.decodeUnknownResult(RunInput)

/** The run a POST body names; a GET (or an empty body) runs as the task. */
const runOf = async (c: Context, taskId: string): Promise<Result.Result<AgUiRun, ApiError>> => {
  const body = c.req.method === "POST" ? await c.req.text() : ""
  if (body.trim() === "") return Result.succeed({ threadId: taskId, runId: taskId })
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch (error) {
    return Result.fail(apiError("invalid_json", `the body is not JSON: ${(error as Error).message}`, "body"))
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return Result.fail(apiError("invalid_run_input", "the body must be an AG-UI RunAgentInput object", "body"))
  }
  const input = decodeRunInput(parsed)
  if (Result.isFailure(input)) {
    const field = "threadId" in parsed && typeof parsed.threadId !== "string" ? "threadId" : "runId"
    return Result.fail(apiError("invalid_run_input", `${field} must be a string`, field))
  }
  return Result.succeed({ threadId: input.success.threadId ?? taskId, runId: input.success.runId ?? taskId })
}

export const agUiRoutes = (deps: RouteDeps) => {
  const handler = async (c: Context) => {
    const query = c.req.query()
    if (query.types !== undefined) {
      return errorResponse(c, apiError("invalid_query", "types does not apply to AG-UI: a run has no type filter", "types"))
    }
    const parsed = parseAll({
      path: parseTaskPath(c.req.param("agentId"), c.req.param("taskId")),
      history: parseBoolean(query.include_history, "include_history", true),
      after: parseResumePoint(c)
    })
    if (!parsed.ok) return errorResponse(c, parsed.error)
    const { path, history, after } = parsed.value
    const run = await runOf(c, path.taskId)
    if (Result.isFailure(run)) return errorResponse(c, run.failure)
    return serveStream(c, deps, {
      request: { ...path, after, history },
      codec: () =>
        Effect.gen(function*() {
          const states = yield* TaskStates
          const state = after !== undefined ? yield* states.at(path, after) : history ? InitialState : yield* states.current(path)
          return new AgUiCodec(run.success, state)
        })
    })
  }
  return new Hono()
    .get(AG_UI_PATH, handler)
    .post(
      AG_UI_PATH,
      bodyLimit({
        maxSize: deps.config.maxBodyBytes,
        onError: (c) =>
          errorResponse(c, apiError("payload_too_large", `the body is over MAX_BODY_BYTES (${deps.config.maxBodyBytes})`, "body"))
      }),
      handler
    )
}
