/**
 * The embedded log: one process, no Redis, the same semantics and id format
 * as the Redis layer (checked by the shared contract suite). The default when
 * `REDIS_URL` is unset.
 *
 * Memory is bounded: an ended task is forgotten RETENTION_S after its terminal
 * event (as on Redis), and a task that has not ended TASK_IDLE_TTL_S after its
 * last event (a workflow that crashed never ends), so the process does not
 * grow with every task it ever saw.
 */
import { Effect, Layer, Result, Stream } from "effect"
import type { CommandDraft, ControlCommand } from "../events/control.ts"
import type { EventDraft } from "../events/draft.ts"
import { compareIds, type EventId, formatEventId, LogEvent, parseEventId, ZeroId } from "../events/envelope.ts"
import { InflightCalls } from "../events/inflight.ts"
import { Registry } from "../events/RegistryService.ts"
import { indexedStatus, indexUpdateOf, type TaskStatus } from "../events/state.ts"
import { AppConfig } from "../config.ts"
import { AgentMismatch, type AppendOutcome, type TaskHead, TaskEnded, type TaskRef } from "./EventLog.ts"
import { logServices } from "./LogServices.ts"
import type { TaskSummary } from "./TaskIndex.ts"
import { GatewayMetrics } from "../observability/metrics.ts"
import { LiveChannels } from "./LiveChannels.ts"
import { MemoryControl } from "./MemoryControl.ts"

interface StoredTask {
  readonly agentId: string
  readonly events: Array<LogEvent>
  lastId: EventId
  trimmed: boolean
  expiresAt: number
}

interface IdempotencyEntry {
  readonly id: string
  readonly expiresAt: number
}

const SWEEP_INTERVAL_MS = 60_000

/** Index of the first event with id > `after` (events are in id order). */
const firstAfter = (events: ReadonlyArray<LogEvent>, after: EventId): number => {
  let low = 0
  let high = events.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareIds(events[middle], after) <= 0) low = middle + 1
    else high = middle
  }
  return low
}

/** EventLog, LiveFeed, TaskIndex and ControlQueue on one in-process store. */
export const MemoryLogLayer = Layer.effectContext(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const registry = yield* Registry
    const tasks = new Map<string, StoredTask>()
    const idempotency = new Map<string, IdempotencyEntry>()
    /** The task index: `agentId/taskId` → last append time and status, oldest first. */
    const recent = new Map<string, { readonly at: number; readonly status: TaskStatus; readonly lastId: EventId }>()
    // Appends dispatch in-process: a channel is only its listener set, established as soon as it is opened.
    const live = yield* LiveChannels.make(yield* GatewayMetrics, { open: () => undefined, close: () => {} })
    const control = new MemoryControl(config)
    /** LLM calls in flight per task (SPEC §8.2), kept beside the log as Redis keeps them beside the stream. */
    const inflight = new Map<string, InflightCalls>()
    const callsOf = (taskId: string) => {
      let calls = inflight.get(taskId)
      if (calls === undefined) {
        calls = new InflightCalls(config.inflightSeconds * 1000)
        inflight.set(taskId, calls)
      }
      return calls
    }

    const liveTask = (taskId: string, now = Date.now()): StoredTask | undefined => {
      const task = tasks.get(taskId)
      if (task !== undefined && task.expiresAt <= now) {
        tasks.delete(taskId)
        return undefined
      }
      return task
    }

    const sweep = () => {
      const now = Date.now()
      for (const taskId of tasks.keys()) liveTask(taskId, now)
      for (const [key, entry] of idempotency) if (entry.expiresAt <= now) idempotency.delete(key)
      for (const [taskId, calls] of inflight) if (calls.snapshot(now).length === 0) inflight.delete(taskId)
      control.sweep(now)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => setInterval(sweep, SWEEP_INTERVAL_MS)),
      (timer) => Effect.sync(() => clearInterval(timer))
    )

    const nextId = (last: EventId, now: number): EventId =>
      now > last.ms ? { ms: now, seq: 0 } : { ms: last.ms, seq: last.seq + 1 }

    const touchIndex = (task: TaskRef, now: number, drafts: ReadonlyArray<EventDraft>, ids: ReadonlyArray<string | null>) => {
      const member = `${task.agentId}/${task.taskId}`
      const current = recent.get(member)
      const update = indexUpdateOf(registry, drafts, ids)
      const lastId = update.lastId === undefined ? undefined : parseEventId(update.lastId)
      // As task_index.lua: only an append newer than the recorded one changes the status.
      const newer = lastId !== undefined && (current === undefined || compareIds(lastId, current.lastId) > 0)
      recent.delete(member)
      recent.set(member, {
        at: now,
        status: newer ? indexedStatus(current?.status, update.status) : current?.status ?? "running",
        lastId: newer ? lastId : current?.lastId ?? ZeroId
      })
      if (recent.size > config.taskIndexMax) recent.delete(recent.keys().next().value!)
    }

    const store = (task: TaskRef, drafts: ReadonlyArray<EventDraft>): AppendOutcome => {
      const now = Date.now()
      let stored = liveTask(task.taskId, now)
      if (stored !== undefined && stored.agentId !== task.agentId) {
        return Result.fail(new AgentMismatch({ taskId: task.taskId }))
      }
      const last = stored?.events.at(-1)
      if (last?.terminal) {
        return Result.fail(
          new TaskEnded({ taskId: task.taskId, message: `task ${task.taskId} has ended; nothing can be appended after ${last.id}` })
        )
      }
      const terminalAt = drafts.findIndex((draft) => registry.isTerminal(draft.type))
      if (terminalAt >= 0 && terminalAt < drafts.length - 1) {
        return Result.fail(new TaskEnded({ taskId: task.taskId, message: `event ${terminalAt + 1} is terminal and must be the last` }))
      }
      const time = new Date(now).toISOString()
      const ids: Array<string | null> = []
      // Dispatched once the whole batch is stored: listeners never see half a batch in the log.
      // A stored event goes out with the id of the one before it, as the Redis feed's do.
      const dispatched: Array<{ readonly event: LogEvent; readonly prev: EventId | undefined }> = []
      for (const draft of drafts) {
        const idempotencyKey = draft.idempotencyKey === undefined ? undefined : `${task.taskId}\n${draft.idempotencyKey}`
        const seen = idempotencyKey === undefined ? undefined : idempotency.get(idempotencyKey)
        if (seen !== undefined && seen.expiresAt > now) {
          ids.push(seen.id)
          continue
        }
        if (registry.isEphemeral(draft.type)) {
          ids.push(null)
          const filled = callsOf(task.taskId).apply(draft.type, undefined, draft.data, now)
          dispatched.push({
            event: filled === undefined
              ? LogEvent.fromDraft(registry, undefined, task, draft.type, draft.time ?? time, draft.data, draft.dataJson)
              : LogEvent.fromDraft(registry, undefined, task, draft.type, draft.time ?? time, filled),
            prev: undefined
          })
          continue
        }
        stored ??= { agentId: task.agentId, events: [], lastId: ZeroId, trimmed: false, expiresAt: now }
        tasks.set(task.taskId, stored)
        const prev = stored.lastId
        stored.lastId = nextId(prev, now)
        const id = formatEventId(stored.lastId)
        const filled = callsOf(task.taskId).apply(draft.type, id, draft.data, now)
        const event = filled === undefined
          ? LogEvent.fromDraft(registry, id, task, draft.type, draft.time ?? time, draft.data, draft.dataJson)
          : LogEvent.fromDraft(registry, id, task, draft.type, draft.time ?? time, filled)
        stored.events.push(event)
        if (stored.events.length > config.historyMax) {
          stored.events.splice(0, stored.events.length - config.historyMax)
          stored.trimmed = true
        }
        stored.expiresAt = event.terminal
          ? now + config.retentionSeconds * 1000
          : config.taskIdleSeconds === 0 ? Infinity : now + config.taskIdleSeconds * 1000
        if (event.terminal) inflight.delete(task.taskId)
        if (idempotencyKey !== undefined) {
          idempotency.set(idempotencyKey, { id, expiresAt: now + config.idempotencySeconds * 1000 })
        }
        ids.push(id)
        dispatched.push({ event, prev })
      }
      touchIndex(task, now, drafts, ids)
      for (const { event, prev } of dispatched) live.dispatch(task.taskId, event, prev)
      return Result.succeed(ids)
    }

    const read = (taskId: string, after: EventId, limit: number) =>
      Effect.sync(() => {
        const events = liveTask(taskId)?.events ?? []
        const start = firstAfter(events, after)
        return events.slice(start, start + limit)
      })

    const head = (taskId: string) =>
      Effect.sync((): TaskHead => {
        const task = liveTask(taskId)
        const first = task?.events[0]
        return {
          agentId: task?.agentId,
          last: task?.events.at(-1),
          first: first === undefined ? undefined : { ms: first.ms, seq: first.seq },
          trimmed: task?.trimmed ?? false,
          calls: (inflight.get(taskId)?.size ?? 0) > 0
        }
      })

    const inflightOf = (taskId: string) => Effect.sync(() => inflight.get(taskId)?.snapshot(Date.now()) ?? [])

    const listTasks = (agentId: string | undefined, limit: number) =>
      Effect.sync(() => {
        const summaries: Array<TaskSummary> = []
        for (const [member, { at, status }] of [...recent].reverse()) {
          if (summaries.length >= limit) break
          const slash = member.indexOf("/")
          const summary = { agentId: member.slice(0, slash), taskId: member.slice(slash + 1) }
          if (agentId !== undefined && summary.agentId !== agentId) continue
          summaries.push({ ...summary, lastEventAt: new Date(at).toISOString(), status })
        }
        return summaries
      })

    const commands = (task: TaskRef, reader: string) =>
      Stream.unwrap(
        Effect.sync(() => {
          let position: EventId = ZeroId
          const take = (): ControlCommand | undefined => {
            const next = control.nextAfter(task, reader, position)
            if (next !== undefined) position = parseEventId(next.id)!
            return next
          }
          return Stream.fromEffectRepeat(
            Effect.callback<ControlCommand>((resume) => {
              let cancel = () => {}
              const attempt = () => {
                const next = take()
                if (next === undefined) cancel = control.onAppend(task.taskId, attempt)
                else resume(Effect.succeed(next))
              }
              attempt()
              return Effect.sync(() => cancel())
            })
          )
        })
      )

    return logServices({
      log: { appendNow: async (task, drafts) => store(task, drafts), read, head, inflight: inflightOf, ping: Effect.void },
      feed: { ...live.feed, ready: Effect.void, liveTaskCount: () => live.size },
      index: { tasks: listTasks },
      control: {
        append: (task: TaskRef, draft: CommandDraft) => Effect.sync(() => control.append(task, draft)),
        commands,
        ack: (taskId: string, reader: string, id: string) => Effect.sync(() => control.ack(taskId, reader, id))
      }
    })
  })
)
