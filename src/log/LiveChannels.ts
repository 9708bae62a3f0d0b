/**
 * The local listeners of each task's live channel, ref-counted: the first
 * listener of a task opens the channel, the last one to leave closes it.
 * Plain TypeScript on a plain map, not an Effect `RcMap`: an entry is what
 * every followed task costs while it is followed (an `RcMap` entry with its
 * scope and context measured ≈ 2.9 KB per task; docs/performance.md, "idle"),
 * and dispatch runs once per event for every local client. The channels are
 * closed with the scope of the log that made them.
 *
 * Listeners are isolated: one that throws is logged and skipped, and the
 * others still get the event (and the appender or the Redis client that
 * dispatched it never sees the exception).
 */
import { Effect, type Scope } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import { GatewayLog, type LogLine } from "../observability/log.ts"
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import type { LiveFeed, LiveListener } from "./LiveFeed.ts"

const failed = (logLine: LogLine, taskId: string, error: unknown): void => {
  logLine("error", "a live listener failed; the others still get the event", {
    taskId,
    error: error instanceof Error ? error.message : String(error)
  })
}

/** Where the channels are (a Redis subscription each; nothing for the memory log). */
export interface ChannelSource {
  /** Open a task's channel; the promise settles once it receives (undefined: at once). */
  open(taskId: string): Promise<void> | undefined
  close(taskId: string): void
}

/**
 * A followed task: what every followed task costs while it is followed, so it holds no more than
 * it must — its one listener, or its listeners once a second came (a `Set` of one measured
 * ≈ 370 B), and until the channel is established the wait for it (`Effect.void` from then on).
 */
interface Channel {
  listeners: LiveListener | Set<LiveListener>
  established: Effect.Effect<void>
}

export class LiveChannels {
  private readonly channels = new Map<string, Channel>()
  /** Once per live event on this instance: from its append (the time in its id) to its dispatch to local clients. */
  private readonly lag: (seconds: number) => void

  private constructor(metrics: MetricsRecorder, private readonly logLine: LogLine, private readonly source: ChannelSource) {
    this.lag = metrics.labelled(Metrics.deliveryLag, {})
  }

  /** The channels of a log, opened from `source`; those still open are closed with the scope. */
  static make(metrics: MetricsRecorder, source: ChannelSource): Effect.Effect<LiveChannels, never, Scope.Scope> {
    return Effect.gen(function*() {
      const live = new LiveChannels(metrics, yield* GatewayLog, source)
      yield* Effect.addFinalizer(() => Effect.sync(() => live.closeAll()))
      return live
    })
  }

  /**
   * Deliver the task's live events to `listener` until `detach`; the effect
   * completes once its channel is established. The listener is in place
   * before the channel is opened, so nothing published after it answers is missed.
   */
  attach(taskId: string, listener: LiveListener): Effect.Effect<void> {
    const channel = this.channels.get(taskId)
    if (channel !== undefined) {
      if (channel.listeners instanceof Set) channel.listeners.add(listener)
      else if (channel.listeners !== listener) channel.listeners = new Set([channel.listeners, listener])
      return channel.established
    }
    // In the map before it opens: a message may arrive before `open` returns.
    const opening: Channel = { listeners: listener, established: Effect.void }
    this.channels.set(taskId, opening)
    const pending = this.source.open(taskId)
    if (pending === undefined) return opening.established
    opening.established = Effect.promise(() => pending)
    const done = () => {
      opening.established = Effect.void
    }
    pending.then(done, done)
    return opening.established
  }

  /** Stop delivering to `listener`; the task's last listener closes its channel. */
  detach(taskId: string, listener: LiveListener): void {
    const channel = this.channels.get(taskId)
    if (channel === undefined) return
    if (channel.listeners instanceof Set) {
      if (!channel.listeners.delete(listener) || channel.listeners.size > 0) return
    } else if (channel.listeners !== listener) return
    this.channels.delete(taskId)
    this.source.close(taskId)
  }

  /** What a log's LiveFeed serves from these channels. */
  get feed(): Pick<LiveFeed["Service"], "listen" | "attach" | "detach"> {
    return {
      listen: (taskId, listener) => this.listen(taskId, listener),
      attach: (taskId, listener) => this.attach(taskId, listener),
      detach: (taskId, listener) => this.detach(taskId, listener)
    }
  }

  /** `attach` for as long as the scope lasts. */
  listen(taskId: string, listener: LiveListener): Effect.Effect<void, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.sync(() => this.attach(taskId, listener)),
      () => Effect.sync(() => this.detach(taskId, listener))
    ).pipe(Effect.flatten)
  }

  private closeAll(): void {
    const tasks = [...this.channels.keys()]
    this.channels.clear()
    for (const taskId of tasks) this.source.close(taskId)
  }

  /**
   * Hand `event` to the task's listeners, with `prev` (the stored event before it, see LiveListener).
   * A listener that comes while it is being handed may or may not get it (a second listener of a
   * task does not, a later one does); either way its catch-up reads the log after it listens.
   */
  dispatch(taskId: string, event: LogEvent, prev: EventId | undefined): void {
    const listeners = this.channels.get(taskId)?.listeners
    if (listeners === undefined) return
    if (event.ms > 0) this.lag(Math.max(0, Date.now() - event.ms) / 1000)
    if (!(listeners instanceof Set)) return this.hand(taskId, listeners, event, prev)
    for (const listener of listeners) this.hand(taskId, listener, event, prev)
  }

  /** Tell the task's listeners that live events may have been missed. */
  gap(taskId: string): void {
    const listeners = this.channels.get(taskId)?.listeners
    if (listeners === undefined) return
    if (!(listeners instanceof Set)) return this.hand(taskId, listeners, undefined, undefined)
    for (const listener of listeners) this.hand(taskId, listener, undefined, undefined)
  }

  /** One listener's event (a gap without one), isolated from the others. */
  private hand(taskId: string, listener: LiveListener, event: LogEvent | undefined, prev: EventId | undefined): void {
    try {
      if (event === undefined) listener.onGap()
      else listener.onEvent(event, prev)
    } catch (error) {
      failed(this.logLine, taskId, error)
    }
  }

  /** Tell every listener that live events may have been missed. */
  gapAll(): void {
    for (const taskId of this.channels.keys()) this.gap(taskId)
  }

  tasks(): IterableIterator<string> {
    return this.channels.keys()
  }

  /** Whether local listeners follow the task. */
  has(taskId: string): boolean {
    return this.channels.has(taskId)
  }

  get size(): number {
    return this.channels.size
  }
}
