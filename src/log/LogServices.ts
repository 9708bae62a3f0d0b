/**
 * The four log services one layer (memory or Redis) provides together, from
 * one store. The less frequent methods run in a span named after the method
 * (`TaskIndex.tasks`, `ControlQueue.append`, …) with the task id. The methods
 * every ingest, history page or stream open calls (`EventLog.append` and
 * `appendNow`, `read`, `head`, `inflight`) run untraced, as the per-event path
 * (live dispatch) does: a span costs its object, two clock reads and a captured
 * stack per call, which measured 20–45 % of an ingest request's CPU above the
 * minimal endpoint
 * (docs/performance.md, "Issue 17, part 2: ingest").
 */
import { Context, Effect } from "effect"
import { ControlQueue } from "./ControlQueue.ts"
import { EventLog } from "./EventLog.ts"
import { LiveFeed } from "./LiveFeed.ts"
import { TaskIndex } from "./TaskIndex.ts"

export type LogServices = EventLog | LiveFeed | TaskIndex | ControlQueue

const span = (name: string, taskId: string | undefined) =>
  Effect.withSpan(name, taskId === undefined ? undefined : { attributes: { taskId } })

export const logServices = (services: {
  /** The log's methods; `append` is derived from `appendNow`, so the two cannot disagree. */
  readonly log: Omit<EventLog["Service"], "append">
  readonly feed: LiveFeed["Service"]
  readonly index: TaskIndex["Service"]
  readonly control: ControlQueue["Service"]
}): Context.Context<LogServices> => {
  const { log, feed, index, control } = services
  return Context.make(EventLog, {
    append: (task, drafts) => Effect.flatMap(Effect.promise(() => log.appendNow(task, drafts)), Effect.fromResult),
    appendNow: (task, drafts) => log.appendNow(task, drafts),
    read: (taskId, after, limit) => log.read(taskId, after, limit),
    head: (taskId) => log.head(taskId),
    inflight: (taskId) => log.inflight(taskId),
    ping: log.ping.pipe(span("EventLog.ping", undefined))
  }).pipe(
    Context.add(LiveFeed, feed),
    Context.add(TaskIndex, { tasks: (agentId, limit) => index.tasks(agentId, limit).pipe(span("TaskIndex.tasks", undefined)) }),
    Context.add(ControlQueue, {
      append: (task, draft) => control.append(task, draft).pipe(span("ControlQueue.append", task.taskId)),
      commands: control.commands,
      ack: (taskId, reader, id) => control.ack(taskId, reader, id).pipe(span("ControlQueue.ack", taskId))
    })
  )
}
