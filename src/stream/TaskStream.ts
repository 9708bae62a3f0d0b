/**
 * The TaskStream pipeline (SPEC §2, §4.1): history ++ live for one client,
 * de-duplicated by id, filtered by type, ended by a terminal event — written
 * once and used by every transport.
 *
 * Hand-off without gap or duplicate: the subscription listens to the live
 * channel first and buffers, then reads the log after the last delivered id,
 * then replays the buffer, dropping ids already delivered. The same catch-up
 * runs again when the live feed reports a gap (subscriber reconnect) and when
 * a paused subscription resumes.
 *
 * Effect owns the structure (opening, catch-up reads with retry, release on
 * scope close); the per-event path is plain TypeScript with no allocation.
 */
import { Context, Effect, Fiber, Layer, Schedule, Schema, type Scope } from "effect"
import { compareIds, type EventId, formatEventId, type LogEvent, ZeroId } from "../events/envelope.ts"
import { acceptAll, type TypeFilter } from "../events/filter.ts"
import type { Ending } from "../events/registry.ts"
import { endStatusOf } from "../events/state.ts"
import { EventLog, type LiveListener, type LogUnavailable, ownedByOther, type TaskHead } from "../log/EventLog.ts"
import { labelled, Metrics } from "../observability/metrics.ts"

/** Where a transport puts what the pipeline delivers. */
export interface Sink {
  event(event: LogEvent): void
  /** The resume id is older than the retained log: what follows starts at `oldest`. */
  resync(oldest: string): void
  end(reason: EndReason): void
}

export type EndReason = Ending

export interface FollowRequest {
  readonly agentId: string
  readonly taskId: string
  /** Deliver only events after this id (Last-Event-ID, `since`). */
  readonly after?: EventId | undefined
  /** Without `after`: start from the first retained event (true) or from now (false). */
  readonly history?: boolean
  readonly filter?: TypeFilter
}

export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  agentId: Schema.String,
  taskId: Schema.String
}) {}

/** The outcome of opening a task: follow it, or it already ended before the resume point. */
export type Opening =
  | { readonly _tag: "Ended"; readonly reason: EndReason }
  | {
    readonly _tag: "Ready"
    /** Whether the task has already ended (its stream replays history, then closes). */
    readonly ended: boolean
    readonly start: (sink: Sink) => Effect.Effect<Subscription, never, Scope.Scope>
  }

export const HISTORY_PAGE = 500
const readRetry = Schedule.spaced("250 millis")

const droppedOtherAgent = labelled(Metrics.eventsDropped, { reason: "other_agent" })

type State = "syncing" | "live" | "paused" | "closed"

export class Subscription implements LiveListener {
  private state: State = "syncing"
  private lastId: EventId
  private buffer: Array<LogEvent> = []
  /** A gap or resume arrived while a catch-up was reading: read once more before going live. */
  private rescan = false
  private catchingUp = false
  /** A buffered event whose gap one log read did not fill. */
  private unexplained: LogEvent | undefined
  /** Set for catch-ups after a gap or a resume: check first whether the position was trimmed away. */
  private checkTrimmed = false
  /** A catch-up started by a gap or a resume, interrupted when the subscription stops. */
  private running: Fiber.Fiber<void> | undefined

  constructor(
    private readonly log: EventLog["Service"],
    private readonly taskId: string,
    private readonly request: { readonly agentId: string; readonly filter: TypeFilter },
    private readonly sink: Sink,
    after: EventId
  ) {
    this.lastId = after
  }

  /** The id of the last durable event passed on (delivered or filtered out). */
  get position(): string {
    return formatEventId(this.lastId)
  }

  onEvent(event: LogEvent): void {
    if (this.state === "live") {
      if (!this.missedBefore(event)) return this.deliver(event)
      this.beginCatchUp()
    }
    if (this.state === "syncing") this.buffer.push(event)
  }

  onGap(): void {
    if (this.state === "live") this.beginCatchUp()
    else if (this.state === "syncing") this.rescan = true
  }

  /** Stop delivery; nothing is buffered, the log holds it. */
  pause(): void {
    if (this.state !== "live" && this.state !== "syncing") return
    this.state = "paused"
    this.buffer = []
  }

  /** Restart delivery from the first event not yet passed on. */
  resume(): void {
    if (this.state === "paused") this.beginCatchUp()
  }

  close(): void {
    this.state = "closed"
    this.buffer = []
  }

  /** The live feed skipped stored events between the last one passed on and `event`. */
  private missedBefore(event: LogEvent): boolean {
    return event.prev !== undefined && compareIds(event.prev, this.lastId) > 0
  }

  /**
   * Pass on the events that arrived while reading the log. Stops at a gap the
   * log read did not cover, keeping the rest for after the next read.
   */
  private drainBuffer(): boolean {
    const buffered = this.buffer
    for (let i = 0; i < buffered.length; i++) {
      if (this.state !== "syncing") break
      // Read the log once more for a gap; if the same event is still unexplained
      // after that read, the log lost what preceded it (a failover): go on.
      if (this.missedBefore(buffered[i]) && buffered[i] !== this.unexplained) {
        this.unexplained = buffered[i]
        this.buffer = buffered.slice(i)
        return false
      }
      this.deliver(buffered[i])
    }
    this.buffer = []
    return true
  }

  private beginCatchUp(): void {
    this.state = "syncing"
    // Paused or cut off for long, the position may have been trimmed meanwhile: say so, as at open.
    this.checkTrimmed = true
    if (this.catchingUp) this.rescan = true
    else this.running = Effect.runFork(this.catchUp())
  }

  /** Stop for good: nothing more is delivered and a running catch-up is interrupted. */
  stop(): Effect.Effect<void> {
    this.close()
    return this.running === undefined ? Effect.void : Fiber.interrupt(this.running)
  }

  private deliver(event: LogEvent): void {
    if (event.agentId !== this.request.agentId) {
      // An event for the same task id under another agent (a live-only one while
      // nothing is stored, or the first stored ones of an agent that took the id) is
      // not this subscriber's: drop it, and pass over a stored one so no read returns
      // it again. It never ends the stream; a new request for the task answers 404.
      droppedOtherAgent(1)
      if (!event.ephemeral && compareIds(event, this.lastId) > 0) this.lastId = event
      return
    }
    if (event.ephemeral) {
      if (this.request.filter(event.type)) this.sink.event(event)
      return
    }
    if (compareIds(event, this.lastId) <= 0) return
    this.lastId = event
    if (this.request.filter(event.type)) this.sink.event(event)
    if (event.terminal) this.end(endStatusOf(event.type))
  }

  private end(reason: EndReason): void {
    this.close()
    this.sink.end(reason)
  }

  /** One catch-up pass: read the log after the last id until it is exhausted, then go live. */
  catchUp(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      this.catchingUp = true
      if (this.checkTrimmed) {
        this.checkTrimmed = false
        const head = yield* this.log.head(this.taskId).pipe(Effect.retry(readRetry))
        if (head.trimmed && head.first !== undefined && compareIds(this.lastId, head.first) < 0 && this.state === "syncing") {
          this.sink.resync(formatEventId(head.first))
        }
      }
      while (this.state === "syncing") {
        const page = yield* this.log.read(this.taskId, this.lastId, HISTORY_PAGE).pipe(
          Effect.retry(readRetry)
        ) as Effect.Effect<ReadonlyArray<LogEvent>, LogUnavailable>
        if (this.state !== "syncing") break
        for (const event of page) {
          this.deliver(event)
          if (this.state !== "syncing") break
        }
        if (page.length === HISTORY_PAGE || this.state !== "syncing") continue
        if (this.rescan) {
          this.rescan = false
          continue
        }
        if (this.drainBuffer() && this.state === "syncing") this.state = "live"
      }
    }).pipe(
      Effect.catch(() => Effect.void),
      Effect.ensuring(Effect.sync(() => {
        this.catchingUp = false
      }))
    )
  }
}

export class TaskStream extends Context.Service<TaskStream, {
  /** Check the task and resume point; fails when the task belongs to another agent. */
  open(request: FollowRequest): Effect.Effect<Opening, TaskNotFound | LogUnavailable>
}>()("taskstream/TaskStream") {
  static readonly layer = Layer.effect(
    TaskStream,
    Effect.gen(function*() {
      const log = yield* EventLog
      let following = 0
      const openGauge = labelled(Metrics.subscriptions, {})

      const startFrom = (request: FollowRequest, head: TaskHead): EventId =>
        request.after ?? (request.history === false ? head.last ?? ZeroId : ZeroId)

      const open = (request: FollowRequest) =>
        Effect.gen(function*(): Effect.fn.Return<Opening, TaskNotFound | LogUnavailable> {
          const head = yield* log.head(request.taskId)
          if (ownedByOther(head, request.agentId)) {
            return yield* new TaskNotFound({ agentId: request.agentId, taskId: request.taskId })
          }
          const after = startFrom(request, head)
          if (head.last?.terminal && compareIds(after, head.last) >= 0) return { _tag: "Ended", reason: endStatusOf(head.last.type) }
          // Events between the resume id and the oldest retained one may be gone: say so before the rest.
          const oldest = head.first
          const resyncFrom = request.after !== undefined && head.trimmed && oldest !== undefined &&
              compareIds(request.after, oldest) < 0
            ? formatEventId(oldest)
            : undefined
          return { _tag: "Ready", ended: head.last?.terminal === true, start: (sink: Sink) => follow(request, after, resyncFrom, sink) }
        })

      // Flat on purpose: closures made inside a generator would keep its whole
      // frame alive for as long as the subscription lives (memory per idle client).
      const follow = (request: FollowRequest, after: EventId, resyncFrom: string | undefined, sink: Sink) =>
        Effect.suspend(() => {
          const subscription = new Subscription(log, request.taskId, { agentId: request.agentId, filter: request.filter ?? acceptAll }, sink, after)
          openGauge(++following)
          return Effect.addFinalizer(() => {
            openGauge(--following)
            return subscription.stop()
          }).pipe(
            Effect.andThen(log.listen(request.taskId, subscription)),
            Effect.andThen(Effect.sync(() => resyncFrom !== undefined && sink.resync(resyncFrom))),
            Effect.andThen(subscription.catchUp()),
            Effect.as(subscription)
          )
        })

      return TaskStream.of({ open })
    })
  )
}
