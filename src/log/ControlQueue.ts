/** The per-task queue of control commands for the workflow (SPEC §5). */
import { Context, type Effect, type Stream } from "effect"
import type { CommandDraft, ControlCommand } from "../events/control.ts"
import type { LogUnavailable, TaskRef } from "./EventLog.ts"

export class ControlQueue extends Context.Service<ControlQueue, {
  /** Queue a control command for the workflow of `task` (its agent's); returns its command_id. */
  append(task: TaskRef, draft: CommandDraft): Effect.Effect<string, LogUnavailable>
  /**
   * The task's control commands for its agent that `reader` has not
   * acknowledged, oldest first, then new ones as they come; endless. Commands
   * sent to the same task id under another agent are acknowledged and skipped.
   * A later stream for the same reader starts again at its oldest
   * unacknowledged command.
   */
  commands(task: TaskRef, reader: string): Stream.Stream<ControlCommand, LogUnavailable>
  ack(taskId: string, reader: string, id: string): Effect.Effect<void, LogUnavailable>
}>()("taskstream/ControlQueue") {}
