/**
 * The per-task event log (SPEC §2, §5): one service, two layers — Redis for
 * production and many instances, Memory for the embedded single process.
 * Both assign ids `<ms>-<seq>`, keep `HISTORY_MAX` events, remember
 * idempotency keys and notify local listeners of every appended event.
 */
import { Context, type Effect, Schema, type Scope, type Stream } from "effect"
import type { CommandDraft, ControlCommand } from "../events/control.ts"
import type { EventDraft, InvalidEvent } from "../events/draft.ts"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { TaskStatus } from "../events/state.ts"
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
}

/** Whether the task's stored events belong to another agent (it then "does not exist" for this one). */
export const ownedByOther = (head: TaskHead, agentId: string): boolean => head.agentId !== undefined && head.agentId !== agentId

export interface TaskSummary {
  readonly agentId: string
  readonly taskId: string
  readonly lastEventAt: string
  readonly status: TaskStatus
}

export type { InflightCall } from "../events/inflight.ts"

/** Receives a task's live events, in id order, on the instance that listens. */
export interface LiveListener {
  onEvent(event: LogEvent): void
  /** The live feed may have missed events (its connection was lost): catch up from the log. */
  onGap(): void
}

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

export class EventLog extends Context.Service<EventLog, {
  /** Append drafts atomically; returns one id per draft, null for an ephemeral event. */
  append(task: TaskRef, drafts: ReadonlyArray<EventDraft>): Effect.Effect<ReadonlyArray<string | null>, AppendError>
  /** Stored events with id > `after`, oldest first, at most `limit`. */
  read(taskId: string, after: EventId, limit: number): Effect.Effect<ReadonlyArray<LogEvent>, LogUnavailable>
  head(taskId: string): Effect.Effect<TaskHead, LogUnavailable>
  /** The task's LLM calls in flight, oldest first. */
  inflight(taskId: string): Effect.Effect<ReadonlyArray<InflightCall>, LogUnavailable>
  /**
   * Receive the task's live events until the scope closes. Completes once the
   * live feed is established, so a read started afterwards misses nothing.
   */
  listen(taskId: string, listener: LiveListener): Effect.Effect<void, never, Scope.Scope>
  /** Recently active tasks, newest first. */
  tasks(agentId: string | undefined, limit: number): Effect.Effect<ReadonlyArray<TaskSummary>, LogUnavailable>
  /** Succeeds when the log answers. */
  readonly ping: Effect.Effect<void, LogUnavailable>
  /** How many tasks have a live subscription on this instance. */
  readonly liveTaskCount: () => number
  /** Queue a control command for the workflow of `task` (its agent's, SPEC §5); returns its command_id. */
  appendCommand(task: TaskRef, draft: CommandDraft): Effect.Effect<string, LogUnavailable>
  /**
   * The task's control commands for its agent that `reader` has not
   * acknowledged, oldest first, then new ones as they come; endless. Commands
   * sent to the same task id under another agent are acknowledged and skipped.
   * A later stream for the same reader starts again at its oldest
   * unacknowledged command.
   */
  commands(task: TaskRef, reader: string): Stream.Stream<ControlCommand, LogUnavailable>
  ackCommand(taskId: string, reader: string, id: string): Effect.Effect<void, LogUnavailable>
}>()("taskstream/EventLog") {}
