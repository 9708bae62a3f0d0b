/**
 * The local listeners of each task's live channel, ref-counted: the first
 * listener of a task opens the channel, the last one closes it. Dispatch is
 * plain TypeScript — it runs once per event for every local client.
 */
import type { LogEvent } from "../events/envelope.ts"
import { labelled, Metrics } from "../observability/metrics.ts"
import type { LiveListener } from "./EventLog.ts"

/** Once per live event on this instance: from its append (the time in its id) to its dispatch to local clients. */
const lag = labelled(Metrics.deliveryLag, {})

export class LiveChannels {
  private readonly byTask = new Map<string, Set<LiveListener>>()

  /** Returns true when this is the task's first listener (its channel must be opened). */
  add(taskId: string, listener: LiveListener): boolean {
    const listeners = this.byTask.get(taskId)
    if (listeners !== undefined) {
      listeners.add(listener)
      return false
    }
    this.byTask.set(taskId, new Set([listener]))
    return true
  }

  /** Returns true when the task has no listener left (its channel can be closed). */
  remove(taskId: string, listener: LiveListener): boolean {
    const listeners = this.byTask.get(taskId)
    if (listeners === undefined || !listeners.delete(listener)) return false
    if (listeners.size > 0) return false
    this.byTask.delete(taskId)
    return true
  }

  dispatch(taskId: string, event: LogEvent): void {
    const listeners = this.byTask.get(taskId)
    if (listeners === undefined) return
    if (event.ms > 0) lag(Math.max(0, Date.now() - event.ms) / 1000)
    for (const listener of listeners) listener.onEvent(event)
  }

  /** Tell the task's listeners that live events may have been missed. */
  gap(taskId: string): void {
    const listeners = this.byTask.get(taskId)
    if (listeners !== undefined) for (const listener of listeners) listener.onGap()
  }

  /** Tell every listener that live events may have been missed. */
  gapAll(): void {
    for (const listeners of this.byTask.values()) for (const listener of listeners) listener.onGap()
  }

  tasks(): IterableIterator<string> {
    return this.byTask.keys()
  }

  get size(): number {
    return this.byTask.size
  }
}
