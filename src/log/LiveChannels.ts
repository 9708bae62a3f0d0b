/**
 * The local listeners of each task's live channel, ref-counted by an Effect
 * `RcMap`: the first listener of a task opens the channel, the last one's
 * scope closes it. Dispatch is plain TypeScript on a plain map of the open
 * channels — it runs once per event for every local client.
 *
 * Listeners are isolated: one that throws is logged and skipped, and the
 * others still get the event (and the appender or the Redis client that
 * dispatched it never sees the exception).
 */
import { Effect, RcMap, Scope } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import { GatewayLog, type LogLine } from "../observability/log.ts"
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import type { LiveListener } from "./LiveFeed.ts"

const failed = (logLine: LogLine, taskId: string, error: unknown): void => {
  logLine("error", "a live listener failed; the others still get the event", {
    taskId,
    error: error instanceof Error ? error.message : String(error)
  })
}

/**
 * Opens a task's channel for as long as the scope lasts; the effect it returns
 * completes once the channel is established (listeners wait for it).
 */
export type OpenChannel = (taskId: string) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>

interface Channel {
  readonly listeners: Set<LiveListener>
  readonly established: Effect.Effect<void>
}

export class LiveChannels {
  private readonly byTask = new Map<string, Set<LiveListener>>()
  /** Once per live event on this instance: from its append (the time in its id) to its dispatch to local clients. */
  private readonly lag: (seconds: number) => void
  private channels!: RcMap.RcMap<string, Channel>

  private constructor(metrics: MetricsRecorder, private readonly logLine: LogLine) {
    this.lag = metrics.labelled(Metrics.deliveryLag, {})
  }

  /** The channels of a log, opened by `open`; all are closed with the scope. */
  static make(metrics: MetricsRecorder, open: OpenChannel): Effect.Effect<LiveChannels, never, Scope.Scope> {
    return Effect.gen(function*() {
      const live = new LiveChannels(metrics, yield* GatewayLog)
      live.channels = yield* RcMap.make({
        lookup: (taskId: string) =>
          Effect.gen(function*() {
            const listeners = yield* Effect.acquireRelease(
              Effect.sync(() => {
                const set = new Set<LiveListener>()
                live.byTask.set(taskId, set)
                return set
              }),
              () => Effect.sync(() => live.byTask.delete(taskId))
            )
            // The channel is opened by its first listener once it is in the set (RcMap's lookup runs
            // in a fiber of its own, and a message may arrive before the caller resumes), in the
            // entry's scope, which closes it.
            const scope = yield* Effect.scope
            const established = yield* Effect.cached(Effect.flatten(Scope.provide(open(taskId), scope)))
            return { listeners, established } satisfies Channel
          })
      })
      return live
    })
  }

  /**
   * Deliver the task's live events to `listener` until the scope closes;
   * completes once its channel is established. The listener is in place
   * before the channel is opened, so nothing published after it answers is missed.
   */
  listen(taskId: string, listener: LiveListener): Effect.Effect<void, never, Scope.Scope> {
    return RcMap.get(this.channels, taskId).pipe(
      Effect.tap(({ listeners }) =>
        Effect.acquireRelease(Effect.sync(() => listeners.add(listener)), () => Effect.sync(() => listeners.delete(listener)))
      ),
      Effect.flatMap(({ established }) => established)
    )
  }

  /** Hand `event` to the task's listeners, with `prev` (the stored event before it, see LiveListener). */
  dispatch(taskId: string, event: LogEvent, prev: EventId | undefined): void {
    const listeners = this.byTask.get(taskId)
    if (listeners === undefined) return
    if (event.ms > 0) this.lag(Math.max(0, Date.now() - event.ms) / 1000)
    for (const listener of listeners) {
      try {
        listener.onEvent(event, prev)
      } catch (error) {
        failed(this.logLine, taskId, error)
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
        failed(this.logLine, taskId, error)
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
