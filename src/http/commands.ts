/**
 * Queueing a control command (SPEC §5), shared by the REST route
 * (routes/control.ts) and the WebSocket `command` op (wsSession.ts).
 */
import { Effect } from "effect"
import { type CommandDraft, commandIdempotencyKey } from "../events/control.ts"
import { ControlQueue } from "../log/ControlQueue.ts"
import { EventLog, ownedByOther, TaskNotFound } from "../log/EventLog.ts"
import { Metrics } from "../observability/metrics.ts"
import type { RouteDeps } from "./deps.ts"
import { type ApiError, apiError } from "./errors.ts"
import type { TaskPath } from "./params.ts"

/**
 * Queue `draft` for the workflow of the agent's task; fails with TaskNotFound
 * when the task's events belong to another agent. A task with no events yet
 * takes the command for this agent only: the workflow of another agent that
 * later starts the same task id never receives it. An idempotency key counts
 * per subject, agent and command, so two clients (or one client's `pause` and
 * `cancel`) never collide on it.
 */
export const queueCommand = (task: TaskPath, draft: CommandDraft, subject: string) =>
  Effect.gen(function*() {
    const head = yield* (yield* EventLog).head(task.taskId)
    if (ownedByOther(head, task.agentId)) return yield* new TaskNotFound(task)
    const idempotencyKey = draft.idempotencyKey === undefined
      ? undefined
      : commandIdempotencyKey(subject, task.agentId, draft.command, draft.idempotencyKey)
    return yield* (yield* ControlQueue).append(task, { ...draft, idempotencyKey })
  })

/** COMMAND_RATE for `subject`: the refusal when over it (REST and WebSocket commands share one bucket per subject). */
export const overCommandRate = (deps: RouteDeps, subject: string): ApiError | undefined => {
  const wait = deps.commandRate.take(subject, 1)
  if (wait === 0) return undefined
  deps.metrics.record(Metrics.limitRejections, 1, { limit: "command_rate" })
  return { ...apiError("rate_limited", `over COMMAND_RATE (${deps.config.commandRate} commands/s)`), retryAfter: wait }
}
