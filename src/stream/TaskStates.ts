/**
 * Task states (SPEC §9.1), kept incrementally: a bounded per-task cache of the
 * folded state and the id it was folded up to. A request reads only the
 * events appended after that id — one `head` when nothing changed — never the
 * whole log again.
 */
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../config.ts"
import { compareIds, type EventId, ZeroId } from "../events/envelope.ts"
import { foldEvent, InitialState, type TaskState } from "../events/state.ts"
import { EventLog, type LogUnavailable, ownedByOther, type TaskHead, TaskNotFound, type TaskRef } from "../log/EventLog.ts"
import { HISTORY_PAGE } from "./TaskStream.ts"

interface Folded {
  readonly agentId: string
  readonly state: TaskState
  /** The last event folded in. */
  readonly position: EventId
}

export class TaskStates extends Context.Service<TaskStates, {
  /** The task's state now; a task with no events yet is in the initial state. */
  current(task: TaskRef): Effect.Effect<TaskState, TaskNotFound | LogUnavailable>
  /** The task's state right after the event `upTo` (a stream resuming there starts from it). */
  at(task: TaskRef, upTo: EventId): Effect.Effect<TaskState, TaskNotFound | LogUnavailable>
}>()("taskstream/TaskStates") {
  static readonly layer = Layer.effect(
    TaskStates,
    Effect.gen(function*() {
      const log = yield* EventLog
      const { taskIndexMax } = yield* AppConfig
      /** Least recently used first; as many entries as the task index keeps. */
      const cache = new Map<string, Folded>()

      const remember = (taskId: string, folded: Folded) => {
        const known = cache.get(taskId)
        // Two requests folding at once: keep the one that got further.
        if (known !== undefined && known.agentId === folded.agentId && compareIds(known.position, folded.position) > 0) return
        cache.delete(taskId)
        cache.set(taskId, folded)
        if (cache.size > taskIndexMax) cache.delete(cache.keys().next().value!)
      }

      /** Whether a cached fold is still a prefix of the stored log (not a log deleted and begun anew). */
      const stillValid = (folded: Folded, agentId: string, head: TaskHead): boolean =>
        folded.agentId === agentId && head.last !== undefined && compareIds(folded.position, head.last) <= 0 &&
        (head.trimmed || head.first === undefined || compareIds(head.first, folded.position) <= 0)

      /** Fold the events after `from.position` up to `upTo` (inclusive) into `from.state`. */
      const foldFrom = (taskId: string, from: Folded, upTo: EventId) =>
        Effect.gen(function*() {
          let { state, position } = from
          while (compareIds(position, upTo) < 0) {
            const page = yield* log.read(taskId, position, HISTORY_PAGE)
            for (const event of page) {
              if (compareIds(event, upTo) > 0) return { ...from, state, position }
              state = foldEvent(state, event)
              position = event
            }
            if (page.length < HISTORY_PAGE) break
          }
          return { ...from, state, position }
        })

      const headOf = (task: TaskRef) =>
        Effect.flatMap(log.head(task.taskId), (head) =>
          ownedByOther(head, task.agentId) ? Effect.fail(new TaskNotFound(task)) : Effect.succeed(head))

      const current = (task: TaskRef) =>
        Effect.gen(function*() {
          const head = yield* headOf(task)
          if (head.last === undefined) {
            cache.delete(task.taskId)
            return InitialState
          }
          const cached = cache.get(task.taskId)
          const from = cached !== undefined && stillValid(cached, task.agentId, head)
            ? cached
            : { agentId: task.agentId, state: InitialState, position: ZeroId }
          if (compareIds(from.position, head.last) === 0) return from.state
          const folded = yield* foldFrom(task.taskId, from, head.last)
          remember(task.taskId, folded)
          return folded.state
        })

      const at = (task: TaskRef, upTo: EventId) =>
        Effect.gen(function*() {
          const cached = cache.get(task.taskId)
          if (cached !== undefined && cached.agentId === task.agentId && compareIds(cached.position, upTo) === 0) return cached.state
          const head = yield* headOf(task)
          if (head.last === undefined) return InitialState
          if (compareIds(upTo, head.last) >= 0) return yield* current(task)
          // A resume point inside the log: fold the log up to it (reconnects are rare; the cache keeps the newest state).
          const folded = yield* foldFrom(task.taskId, { agentId: task.agentId, state: InitialState, position: ZeroId }, upTo)
          return folded.state
        })

      return TaskStates.of({ current, at })
    })
  )
}
