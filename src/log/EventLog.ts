/**
 * The per-task event log (SPEC §2, §5), and the types and errors every log
 * service shares. Two layers provide it with its siblings (`LiveFeed`,
 * `TaskIndex`, `ControlQueue`, see LogServices.ts) — Redis for production and
 * many instances, Memory for the embedded single process. Both assign ids
 * `<ms>-<seq>`, keep `HISTORY_MAX` events, remember idempotency keys and
 * notify local listeners of every appended event.
 */
import { Context, type Effect, type Result, Schema } from "effect"
import type { EventDraft, InvalidEvent } from "../events/draft.ts"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { InflightCall } from "../events/inflight.ts"

export interface TaskRef {
  readonly agentId: string
  readonly taskId: string
}

/** What the log knows about a task without reading its events. */
export interface TaskHead {
  /** The agent the task's stored events belong to; undefined while nothing is stored. */
  readonly agentId: string | undefined
  /** The newest stored event. */
  readonly last: LogEvent | undefined
  /** The oldest event still retained. */
  readonly first: EventId | undefined
  /** Whether older events were trimmed away (by HISTORY_MAX); they precede `first`. */
  readonly trimmed: boolean
  /** Whether LLM calls may be in flight (chunks kept apart for them: `inflight`); false only when none is. */
  readonly calls: boolean
}

/** Whether the task's stored events belong to another agent (it then "does not exist" for this one). */
export const ownedByOther = (head: TaskHead, agentId: string): boolean => head.agentId !== undefined && head.agentId !== agentId

export type { InflightCall } from "../events/inflight.ts"

/** The task does not exist for this agent (nothing stored, or its events belong to another agent). */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  agentId: Schema.String,
  taskId: Schema.String
}) {}

export class LogUnavailable extends Schema.TaggedError<LogUnavailable>()("LogUnavailable", {
  message: Schema.String
}) {}

export class AgentMismatch extends Schema.TaggedError<AgentMismatch>()("AgentMismatch", {
  taskId: Schema.String
}) {}

export class TaskEnded extends Schema.TaggedError<TaskEnded>()("TaskEnded", {
  taskId: Schema.String,
  message: Schema.String
}) {}

/** The append is stored on the master, but fewer than REDIS_WAIT_REPLICAS replicas acknowledged it in time. */
export class ReplicationTimeout extends Schema.TaggedError<ReplicationTimeout>()("ReplicationTimeout", {
  message: Schema.String
}) {}

export type AppendError = LogUnavailable | AgentMismatch | TaskEnded | InvalidEvent | ReplicationTimeout

/** What an append ends in: the ids (null for an ephemeral event), or why it was refused. */
export type AppendOutcome = Result.Result<ReadonlyArray<string | null>, AppendError>

export type AppendErrorCode = "task_agent_mismatch" | "task_ended" | "invalid_event" | "replication_timeout" | "log_unavailable"

/**
 * How a refused append reads to whoever sent it — the one mapping the HTTP
 * routes, the SDKs (in-process and on Redis) and the broker bridges use: a
 * stable code, a message, and the field at fault.
 */
export const describeAppendError = (
  error: AppendError
): { readonly code: AppendErrorCode; readonly message: string; readonly field?: string } => {
  switch (error._tag) {
    case "AgentMismatch":
      return { code: "task_agent_mismatch", message: `task ${error.taskId} belongs to another agent`, field: "taskId" }
    case "TaskEnded":
      return { code: "task_ended", message: error.message, field: "taskId" }
    case "InvalidEvent":
      return { code: "invalid_event", message: `${error.field}: ${error.message}`, field: error.field }
    case "ReplicationTimeout":
      return { code: "replication_timeout", message: error.message }
    case "LogUnavailable":
      return { code: "log_unavailable", message: error.message }
  }
}

/**
 * The per-task log itself: append, read, head and the calls in flight. Live
 * delivery is `LiveFeed`, the task list `TaskIndex`, control commands
 * `ControlQueue` — one layer (memory or Redis) provides all four.
 */
export class EventLog extends Context.Service<EventLog, {
  /** Append drafts atomically; returns one id per draft, null for an ephemeral event. */
  append(task: TaskRef, drafts: ReadonlyArray<EventDraft>): Effect.Effect<ReadonlyArray<string | null>, AppendError>
  /**
   * The same append, its outcome as a promise: a refusal is the outcome, never
   * a rejection (a defect still rejects). For the publishing routes, which run
   * one per request and would otherwise start a fiber for it (≈ 30 µs of an
   * ingest request's CPU; docs/performance.md, "Issue 17, part 8"). The layers
   * derive `append` from it (`logServices`); a fake that replaces only `append`
   * is not seen by those routes.
   */
  appendNow(task: TaskRef, drafts: ReadonlyArray<EventDraft>): Promise<AppendOutcome>
  /** Stored events with id > `after`, oldest first, at most `limit`. */
  read(taskId: string, after: EventId, limit: number): Effect.Effect<ReadonlyArray<LogEvent>, LogUnavailable>
  head(taskId: string): Effect.Effect<TaskHead, LogUnavailable>
  /** The task's LLM calls in flight, oldest first. */
  inflight(taskId: string): Effect.Effect<ReadonlyArray<InflightCall>, LogUnavailable>
  /** Succeeds when the log answers. */
  readonly ping: Effect.Effect<void, LogUnavailable>
}>()("taskstream/EventLog") {}
