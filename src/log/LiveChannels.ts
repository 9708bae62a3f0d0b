/**
 * The local listeners of each task's live channel, ref-counted: the first
 * listener of a task opens the channel, the last one closes it. Dispatch is
 * plain TypeScript — it runs once per event for every local client.
 *
 * Listeners are isolated: one that throws is logged and skipped, and the
 * others still get the event (and the appender or the Redis client that
 * dispatched it never sees the exception).
 */
import type { LogEvent } from "../events/envelope.ts"
import { logLine } from "../observability/log.ts"
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import type { LiveListener } from "./LiveFeed.ts"

const failed = (taskId: string, error: unknown): void => {
  logLine("error", "a live listener failed; the others still get the event", {
    taskId,
    error: error instanceof Error ? error.message : String(error)
  })
}

export class LiveChannels {
  private readonly byTask = new Map<string, Set<LiveListener>>()
  /** Once per live event on this instance: from its append (the time in its id) to its dispatch to local clients. */
  private readonly lag: (seconds: number) => void

  constructor(metrics: MetricsRecorder) {
    this.lag = metrics.labelled(Metrics.deliveryLag, {})
  }

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
    if (event.ms > 0) this.lag(Math.max(0, Date.now() - event.ms) / 1000)
    for (const listener of listeners) {
      try {
        listener.onEvent(event)
      } catch (error) {
        failed(taskId, error)
      }
    }
  }

  /** Tell the task's listeners that live events may have been missed. */
  gap(taskId: string): void {
    const listeners = this.byTask.get(taskId)
    if (listeners === undefined) return
    for (const listener of listeners) {
      try {
        listener.onGap()
      } catch (error) {
        failed(taskId, error)
      }
    }
  }

  /** Tell every listener that live events may have been missed. */
  gapAll(): void {
    for (const taskId of this.byTask.keys()) this.gap(taskId)
  }

  tasks(): IterableIterator<string> {
    return this.byTask.keys()
  }

  get size(): number {
    return this.byTask.size
  }
}
