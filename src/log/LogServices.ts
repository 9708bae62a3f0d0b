/** The four log services one layer (memory or Redis) provides together, from one store. */
import { Context } from "effect"
import { ControlQueue } from "./ControlQueue.ts"
import { EventLog } from "./EventLog.ts"
import { LiveFeed } from "./LiveFeed.ts"
import { TaskIndex } from "./TaskIndex.ts"

export type LogServices = EventLog | LiveFeed | TaskIndex | ControlQueue

export const logServices = (services: {
  readonly log: EventLog["Service"]
  readonly feed: LiveFeed["Service"]
  readonly index: TaskIndex["Service"]
  readonly control: ControlQueue["Service"]
}): Context.Context<LogServices> =>
  Context.make(EventLog, services.log).pipe(
    Context.add(LiveFeed, services.feed),
    Context.add(TaskIndex, services.index),
    Context.add(ControlQueue, services.control)
  )
