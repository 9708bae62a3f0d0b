/** The recently active tasks with their status (`GET /tasks`, the dashboard's list). */
import { Context, type Effect } from "effect"
import type { TaskStatus } from "../events/state.ts"
import type { LogUnavailable } from "./EventLog.ts"

export interface TaskSummary {
  readonly agentId: string
  readonly taskId: string
  readonly lastEventAt: string
  readonly status: TaskStatus
}

export class TaskIndex extends Context.Service<TaskIndex, {
  /** Recently active tasks, newest first, of `agentId` (or every agent's). */
  tasks(agentId: string | undefined, limit: number): Effect.Effect<ReadonlyArray<TaskSummary>, LogUnavailable>
}>()("taskstream/TaskIndex") {}
