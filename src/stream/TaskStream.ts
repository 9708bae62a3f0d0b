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
 * Resume under real conditions (SPEC §8): history goes out as the client's
 * connection drains (the sink reports what is queued; the next events are
 * delivered only under a low-water mark), live events held meanwhile are
 * bounded (past the bound they are read from the log later), and each
 * catch-up starts with the LLM calls in flight as one compacted chunk each.
 *
 * Effect owns the structure (opening, catch-up reads with retry, catch-ups
 * as fibers of the gateway's FiberSet, interrupted by close or shutdown); the
 * per-event path is plain TypeScript with no allocation. What an open
 * subscription holds is plain too — its place among the task's live listeners and at
 * most one catch-up fiber, released by `close()` — not a scope, a fiber handle
 * or a context per client: an idle SSE client is kilobytes of RSS, most of it
 * the garbage its opening leaves (docs/performance.md, "idle").
 */
import { Context, type Duration, Effect, Fiber, FiberSet, Layer, type Scope } from "effect"
import { compareIds, type EventId, formatEventId, type LogEvent, parseEventId, ZeroId } from "../events/envelope.ts"
import { acceptAll, type TypeFilter } from "../events/filter.ts"
import type { Ending } from "../events/registry.ts"
import { endStatusOf } from "../events/state.ts"
import { CALL_COMPLETED, callIdOf, CHUNK, compactedChunk, type InflightCall } from "../events/inflight.ts"
import { EventLog, type LogUnavailable, ownedByOther, type TaskHead, TaskNotFound } from "../log/EventLog.ts"
import { LiveFeed, type LiveListener } from "../log/LiveFeed.ts"
import { GatewayMetrics, Metrics } from "../observability/metrics.ts"
import { type CatchUpReads, makeCatchUpReads } from "./catchUpReads.ts"

/** Where a transport puts what the pipeline delivers. */
export interface Sink {
  event(event: LogEvent): void
  /** The resume id is older than the retained log: what follows starts at `oldest`. */
  resync(oldest: string): void
  end(reason: EndReason): void
  /** Pacing (SPEC §8.1): bytes queued for the client that its connection has not sent yet. */
  backlog(): number
  /** CLIENT_BUFFER_BYTES: live events piling up past it cut the client off. */
  readonly capacity: number
  /** Call `ready` once `backlog()` is under `mark`; returns a cancel. */
  whenUnder(mark: number, ready: () => void): () => void
  /**
   * The subscription is live (caught up; each live event is passed on as it comes), or no longer
   * (paused, catching up after a gap, closed). A transport that sends the live events of
   * subscriptions in step once for all of them (WebSocket topics) listens to these.
   */
  live?(subscription: Subscription): void
  offline?(): void
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

/** The outcome of opening a task: follow it, or it already ended before the resume point. */
export type Opening =
  | { readonly _tag: "Ended"; readonly reason: EndReason }
  | {
    readonly _tag: "Ready"
    /** Whether the task has already ended (its stream replays history, then closes). */
    readonly ended: boolean
    /** Follow into `sink` until the scope closes; completes once the first catch-up is done. */
    readonly start: (sink: Sink) => Effect.Effect<Subscription, never, Scope.Scope>
    /**
     * Follow into `sink` at once, until the subscription's `close()` (or its end): the first
     * catch-up runs in the background. For a transport whose connection owns the subscription.
     */
    readonly follow: (sink: Sink) => Subscription
  }

/** Events per history read at most; fewer when events are large (a page holds about CLIENT_BUFFER_BYTES). */
export const HISTORY_PAGE = 500
const MIN_HISTORY_PAGE = 20

/** An event held or queued costs its payload plus about this much (envelope, frame). */
const EVENT_OVERHEAD_BYTES = 200
const sizeOf = (event: LogEvent): number => event.dataJson.length + EVENT_OVERHEAD_BYTES

/** The next page's size: about `capacity` bytes, judged by the page just read. */
const nextPageSize = (page: ReadonlyArray<LogEvent>, capacity: number): number => {
  let bytes = 0
  for (const event of page) bytes += sizeOf(event)
  return Math.max(MIN_HISTORY_PAGE, Math.min(HISTORY_PAGE, Math.floor(capacity / (bytes / page.length))))
}

/**
 * A gap the log does not fill at once is read again, after 50, 100, … 1600 ms
 * (about 3 s in all): during a failover a read can reach a node that is still
 * catching up, and an acknowledged event is there a moment later. Still missing
 * after that, the log lost it (a failover without REDIS_WAIT_REPLICAS): go on.
 */
const GAP_READS = 6
const gapDelay = (reads: number): Duration.Input => Math.min(50 * 2 ** (reads - 1), 1600)

type State = "syncing" | "live" | "paused" | "closed"

/** Runs a catch-up as a fiber of the gateway's scope (the TaskStream layer's FiberSet). */
export type ForkCatchUp = (catchUp: Effect.Effect<void>) => Fiber.Fiber<void>

/** What a subscription gives back when it closes: its place in the live feed. */
export interface SubscriptionOwner {
  release(taskId: string, subscription: Subscription): void
}

const noOwner: SubscriptionOwner = { release: () => {} }

export interface SubscriptionOptions {
  readonly agentId: string
  readonly filter: TypeFilter
  /** Whether catch-ups start with the calls in flight as compacted chunks (not for a live-only stream). */
  readonly compact: boolean
  /** Counts events dropped because they came from another agent (the gateway's metric). */
  readonly droppedOtherAgent: (count: number) => void
}

/** What a subscription holds when it holds no live event: no empty array of its own (frozen: never pushed to). */
const NOTHING_HELD: Array<LogEvent> = Object.freeze([]) as unknown as Array<LogEvent>

/**
 * One client's following of one task. Its options are copied into it, not kept: every small
 * object an open subscription holds pins a slot among the garbage of its opening, which costs
 * about 2.5 times its size in RSS (docs/performance.md, "Issue 17, part 6").
 */
export class Subscription implements LiveListener {
  private state: State = "syncing"
  private lastId: EventId
  private buffer: Array<LogEvent> = NOTHING_HELD
  private bufferedBytes = 0
  /** A gap or resume arrived while a catch-up was reading: read once more before going live. */
  private rescan = false
  private catchingUp = false
  /** A buffered event whose gap the log reads have not filled yet, and how many reads tried. */
  private unexplained: LogEvent | undefined
  private unexplainedReads = 0
  /** The live feed's `prev` of the events held while catching up (see LiveListener); made when first needed. */
  private heldPrev: WeakMap<LogEvent, EventId> | undefined
  /** Set for catch-ups after a gap or a resume: check first whether the position was trimmed away. */
  private checkTrimmed = false
  /** The next catch-up pass reads the calls in flight first. */
  private wantInflight: boolean
  /**
   * Compacted chunks waiting for their call's WorkflowLLMCallStarted, by its id; and the last
   * chunk_index delivered per call (Infinity once the call completed). Made when first needed:
   * most subscriptions of an idle gateway never see an LLM call, and each holds them while open.
   */
  private staged: Map<string, LogEvent> | undefined
  private chunkIndex: Map<string, number> | undefined
  /** Events in the next history read: one page is what a catching-up client costs in memory. */
  private pageSize = HISTORY_PAGE
  /** Catch-up reads may share only reads started after this moment (see catchUpReads.ts). */
  private since = 0
  /** The catch-up running, if any: `close()` interrupts it. */
  private fiber: Fiber.Fiber<void> | undefined
  private released = false
  private readonly agentId: string
  private readonly filter: TypeFilter
  private readonly compact: boolean
  private readonly droppedOtherAgent: (count: number) => void

  constructor(
    private readonly reads: CatchUpReads,
    private readonly fork: ForkCatchUp,
    private readonly taskId: string,
    options: SubscriptionOptions,
    private readonly sink: Sink,
    after: EventId,
    private readonly owner: SubscriptionOwner = noOwner
  ) {
    this.lastId = after
    this.agentId = options.agentId
    this.filter = options.filter
    this.compact = options.compact
    this.droppedOtherAgent = options.droppedOtherAgent
    this.wantInflight = options.compact
  }

  /** History is delivered while the client's queue is under this mark (SPEC §8.1). */
  private get lowWater(): number {
    return this.sink.capacity / 4
  }

  /** Live events held while catching up, in bytes; past it they are dropped and read from the log later. */
  private get liveBound(): number {
    return this.sink.capacity / 2
  }

  /** The id of the last durable event passed on (delivered or filtered out). */
  get position(): string {
    return formatEventId(this.lastId)
  }

  onEvent(event: LogEvent, prev: EventId | undefined): void {
    if (this.state === "live") {
      if (!this.missedBefore(prev)) return this.deliver(event)
      this.beginCatchUp()
    }
    if (this.state === "syncing") {
      if (prev !== undefined) (this.heldPrev ??= new WeakMap()).set(event, prev)
      this.hold(event)
    }
  }

  onGap(): void {
    if (this.state === "live") this.beginCatchUp()
    else if (this.state === "syncing") {
      this.readAgain()
      this.reads.wake(this.taskId)
    }
  }

  /** Stop delivery; nothing is buffered, the log holds it. */
  pause(): void {
    if (this.state !== "live" && this.state !== "syncing") return
    this.leaveLive("paused")
    this.dropBuffer()
  }

  /** Restart delivery from the first event not yet passed on. */
  resume(): void {
    if (this.state === "paused") this.beginCatchUp()
  }

  /** Stop for good: leave the live feed and interrupt a catch-up still running. */
  close(): void {
    this.leaveLive("closed")
    this.dropBuffer()
    if (this.released) return
    this.released = true
    this.owner.release(this.taskId, this)
    const fiber = this.fiber
    this.fiber = undefined
    fiber?.interruptUnsafe()
  }

  /** Run `catchUp` as the subscription's catch-up fiber (callers start one only when none is running). */
  run(catchUp: Effect.Effect<void>): void {
    if (this.released) return
    const fiber = this.fork(catchUp)
    // One that finished at once (a memory log answers synchronously) is not kept.
    if (fiber.pollUnsafe() === undefined && !this.released) this.fiber = fiber
  }

  /** Completes when the catch-up running (if any) has ended. */
  get settled(): Effect.Effect<void> {
    return Effect.suspend(() => (this.fiber === undefined ? Effect.void : Effect.asVoid(Fiber.await(this.fiber))))
  }

  /** The live feed skipped stored events between the last one passed on and the event that came after `prev`. */
  private missedBefore(prev: EventId | undefined): boolean {
    return prev !== undefined && compareIds(prev, this.lastId) > 0
  }

  /** Keep a live event that arrived while catching up, within `liveBound`. */
  private hold(event: LogEvent): void {
    // It was just appended: the log answers, a catch-up read waiting to retry need not wait.
    this.reads.wake(this.taskId)
    if (this.buffer === NOTHING_HELD) this.buffer = [event]
    else this.buffer.push(event)
    this.bufferedBytes += sizeOf(event)
    if (this.bufferedBytes <= this.liveBound) return
    // A slow client catching up while much goes on: the log keeps the stored ones and the
    // calls in flight; read them from there when the client gets that far.
    this.dropBuffer()
    this.readAgain()
  }

  private dropBuffer(): void {
    this.buffer = NOTHING_HELD
    this.bufferedBytes = 0
  }

  /** Read the log (and the calls in flight) once more before going live, from events after now. */
  private readAgain(): void {
    this.rescan = true
    this.wantInflight = this.compact
    this.since = this.reads.now()
  }

  /**
   * The history read reached `stored`: the live events held since, up to its own
   * live copy, go out first. The live feed's order is the log's, so a token chunk
   * published between two stored events stays between them, and is not lost
   * behind a terminal event the read reached first.
   */
  private releaseHeld(stored: LogEvent): void {
    let cut = -1
    for (let k = 0; k < this.buffer.length; k++) {
      const held = this.buffer[k]
      if (held.ephemeral) continue
      if (compareIds(held, stored) > 0) break
      cut = k
    }
    if (cut < 0) return
    const released = this.buffer.splice(0, cut + 1)
    for (const held of released) this.bufferedBytes -= sizeOf(held)
    for (let k = 0; k < released.length && this.state === "syncing"; k++) this.deliver(released[k])
  }

  /**
   * Pass on the events that arrived while reading the log. Stops at a gap the
   * log read did not cover, keeping the rest for after the next read.
   */
  private drainBuffer(): boolean {
    const buffered = this.buffer
    for (let i = 0; i < buffered.length; i++) {
      if (this.state !== "syncing") break
      // A gap the log read did not cover: read again (GAP_READS), then go on.
      if (this.missedBefore(this.heldPrev?.get(buffered[i]))) {
        if (buffered[i] !== this.unexplained) {
          this.unexplained = buffered[i]
          this.unexplainedReads = 0
        }
        if (this.unexplainedReads < GAP_READS) {
          this.unexplainedReads++
          // What was passed on no longer counts against the live bound.
          for (let k = 0; k < i; k++) this.bufferedBytes -= sizeOf(buffered[k])
          this.buffer = buffered.slice(i)
          return false
        }
      }
      this.deliver(buffered[i])
    }
    this.dropBuffer()
    return true
  }

  private beginCatchUp(): void {
    this.leaveLive("syncing")
    // Paused or cut off for long, the position may have been trimmed meanwhile: say so, as at open.
    this.checkTrimmed = true
    this.wantInflight = this.compact
    this.since = this.reads.now()
    if (this.catchingUp) this.readAgain()
    else {
      // Catching up from now, not from when the fiber starts: a pause and a resume before then
      // (one WebSocket frame batch) must not start a second catch-up beside this one.
      this.catchingUp = true
      // Started on the next turn: the other clients told of the same gap take their mark first, then share its reads.
      this.run(Effect.andThen(Effect.yieldNow, this.catchUp()))
    }
  }

  /**
   * The first catch-up, once the live feed is `established` (reads started from then on see
   * everything it may have missed); `resyncFrom` is said first when the resume point was trimmed.
   *
   * `upToDate`: when the task was opened, the log held nothing after the position and no LLM call
   * was in flight (a client that connects before its workflow starts, a resume at the newest event,
   * a live-only stream). Then the head is read once more, now that the live feed is established —
   * one small read shared by the task's clients, instead of the calls in flight and a history page
   * — and the subscription goes live at once if it still shows nothing new; else it catches up.
   * (Nothing may be taken on trust from the live feed alone: an event stored between the first head
   * read and the subscription is seen by no live message, and may be the task's last.)
   */
  begin(established: Effect.Effect<void>, resyncFrom: string | undefined, upToDate: boolean): void {
    this.catchingUp = true
    this.run(Effect.andThen(
      established,
      Effect.suspend(() => {
        this.since = this.reads.now()
        if (resyncFrom !== undefined) this.sink.resync(resyncFrom)
        return upToDate ? Effect.flatMap(this.reads.head(this.taskId, this.since), (head) => this.goLiveIfCurrent(head)) : this.catchUp()
      })
    ))
  }

  /** Live at once when the head read after the live feed was established shows nothing to catch up on; else catch up. */
  private goLiveIfCurrent(head: TaskHead): Effect.Effect<void> {
    if (this.state !== "syncing") {
      // Paused (or closed) meanwhile: no catch-up is under way, so a resume starts one.
      this.catchUpEnded()
      return Effect.void
    }
    const behind = head.calls || this.buffer.length > 0 || this.rescan ||
      (head.last !== undefined && compareIds(head.last, this.lastId) > 0)
    if (behind) return this.catchUp()
    this.catchUpEnded()
    this.goLive()
    return Effect.void
  }

  /** No catch-up runs any more: the next gap or resume starts one. */
  private catchUpEnded(): void {
    this.catchingUp = false
    this.fiber = undefined
  }

  private goLive(): void {
    this.state = "live"
    this.sink.live?.(this)
  }

  private leaveLive(state: Exclude<State, "live">): void {
    const wasLive = this.state === "live"
    this.state = state
    if (wasLive) this.sink.offline?.()
  }

  /**
   * Whether this live subscription passes on exactly what `other` (live, same task, agent and
   * filter) passes on from now on: both are at the same position and expect the same next chunk
   * of every call in flight. Then this one takes `other`'s record of the calls, completed ones
   * included, so the two stay in step event after event. Asked between deliveries, never during one.
   */
  joinStep(other: Subscription): boolean {
    if (this.state !== "live" || other.state !== "live" || compareIds(this.lastId, other.lastId) !== 0) return false
    const mine = this.chunkIndex ?? NO_CALLS
    const theirs = other.chunkIndex ?? NO_CALLS
    if (!sameCallsInFlight(mine, theirs) || !sameCallsInFlight(theirs, mine)) return false
    this.chunkIndex = theirs.size === 0 ? undefined : new Map(theirs)
    return true
  }

  private deliver(event: LogEvent): void {
    if (event.agentId !== this.agentId) {
      // An event for the same task id under another agent (a live-only one while
      // nothing is stored, or the first stored ones of an agent that took the id) is
      // not this subscriber's: drop it, and pass over a stored one so no read returns
      // it again. It never ends the stream; a new request for the task answers 404.
      this.droppedOtherAgent(1)
      if (!event.ephemeral && compareIds(event, this.lastId) > 0) this.lastId = event
      return
    }
    if (event.ephemeral) {
      if (this.freshChunk(event) && this.filter(event.type)) this.sink.event(event)
      return
    }
    if (compareIds(event, this.lastId) <= 0) return
    this.lastId = event
    if (this.filter(event.type)) this.sink.event(event)
    if (event.terminal) return this.end(endStatusOf(event))
    if (event.type === CALL_COMPLETED) {
      const callId = callIdOf(event.data)
      if (callId !== undefined) (this.chunkIndex ??= new Map()).set(callId, Infinity)
    }
    if (this.staged !== undefined && this.staged.size > 0) {
      const compacted = this.staged.get(event.id!)
      if (compacted !== undefined) {
        this.staged.delete(event.id!)
        this.deliver(compacted)
      }
    }
  }

  /** No chunk index of a call twice on one stream (SPEC §8.2); a chunk without a call passes. */
  private freshChunk(event: LogEvent): boolean {
    if (event.type !== CHUNK) return true
    const callId = callIdOf(event.data)
    const index = event.data.chunk_index
    if (callId === undefined || typeof index !== "number") return true
    const last = this.chunkIndex?.get(callId)
    if (last !== undefined && index <= last) return false
    ;(this.chunkIndex ??= new Map()).set(callId, index)
    return true
  }

  /** A call in flight goes out as one compacted chunk: now when its start is behind us, else right after it. */
  private stage(calls: ReadonlyArray<InflightCall>): void {
    this.staged = undefined
    for (const call of calls) {
      if (call.index < 0) continue
      const compacted = compactedChunk({ agentId: this.agentId, taskId: this.taskId }, call)
      if (call.started === undefined || compareIds(call.started, this.lastId) <= 0) this.deliver(compacted)
      else (this.staged ??= new Map()).set(formatEventId(call.started), compacted)
    }
  }

  /** Going live: chunks of completed calls can no longer be waiting in a buffer. */
  private forgetCompleted(): void {
    if (this.chunkIndex === undefined) return
    for (const [callId, index] of this.chunkIndex) if (index === Infinity) this.chunkIndex.delete(callId)
    if (this.chunkIndex.size === 0) this.chunkIndex = undefined
  }

  private end(reason: EndReason): void {
    this.close()
    this.sink.end(reason)
  }

  /** Wait until the client's queue is under the low-water mark. */
  private room(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const cancel = this.sink.whenUnder(this.lowWater, () => resume(Effect.void))
      return Effect.sync(cancel)
    })
  }

  /**
   * One catch-up pass: read the log after the last id until it is exhausted,
   * page by page as the client's connection drains, then go live.
   */
  catchUp(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      this.catchingUp = true
      if (this.checkTrimmed) {
        this.checkTrimmed = false
        const head = yield* this.reads.head(this.taskId, this.since)
        if (head.trimmed && head.first !== undefined && compareIds(this.lastId, head.first) < 0 && this.state === "syncing") {
          this.sink.resync(formatEventId(head.first))
        }
      }
      while (this.state === "syncing") {
        const limit = this.pageSize
        let page: ReadonlyArray<LogEvent>
        if (this.wantInflight) {
          this.wantInflight = false
          // The calls in flight and the next page together: one round trip, not two. Either may
          // join a read already under way, so the page may be the older of the two (see below).
          const [calls, first] = yield* Effect.all([
            this.reads.inflight(this.taskId, this.since),
            this.reads.read(this.taskId, this.lastId, limit, this.since)
          ], { concurrency: 2 })
          if (this.state !== "syncing") break
          this.stage(calls)
          page = first
        } else page = yield* this.reads.read(this.taskId, this.lastId, limit, this.since)
        for (let i = 0; i < page.length && this.state === "syncing"; i++) {
          if (this.sink.backlog() >= this.lowWater) yield* this.room()
          if (this.state !== "syncing") break
          if (this.buffer.length > 0) this.releaseHeld(page[i])
          this.deliver(page[i])
        }
        if (page.length > 0) this.pageSize = nextPageSize(page, this.sink.capacity)
        if (page.length === limit || this.state !== "syncing") continue
        if (this.rescan) {
          this.rescan = false
          continue
        }
        // Calls whose start was trimmed away from the log (it lies behind the position reached):
        // their text goes out before the live chunks. A call whose start lies ahead started after
        // the page was read (the two reads are not ordered in Redis): it stays staged, and its
        // text goes out right after its start, from the events held or the next read.
        if (this.staged !== undefined) {
          for (const [started, compacted] of this.staged) {
            if (compareIds(parseEventId(started)!, this.lastId) > 0) continue
            this.staged.delete(started)
            this.deliver(compacted)
          }
        }
        if (!this.drainBuffer()) yield* Effect.sleep(gapDelay(this.unexplainedReads))
        else if (this.state === "syncing") {
          this.forgetCompleted()
          this.goLive()
        }
      }
    }).pipe(
      Effect.ensuring(Effect.sync(() => this.catchUpEnded()))
    )
  }
}

const NO_CALLS: ReadonlyMap<string, number> = new Map()

/** Every call with a chunk index in `a` (not completed) has the same one in `b`. */
const sameCallsInFlight = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean => {
  for (const [callId, index] of a) if (index !== Infinity && b.get(callId) !== index) return false
  return true
}

export class TaskStream extends Context.Service<TaskStream, {
  /** Check the task and resume point; fails when the task belongs to another agent. */
  open(request: FollowRequest): Effect.Effect<Opening, TaskNotFound | LogUnavailable>
}>()("taskstream/TaskStream") {
  static readonly layer = Layer.effect(
    TaskStream,
    Effect.gen(function*() {
      const log = yield* EventLog
      const feed = yield* LiveFeed
      const metrics = yield* GatewayMetrics
      const droppedOtherAgent = metrics.labelled(Metrics.eventsDropped, { reason: "other_agent" })
      // Shared reads and every subscription's catch-ups are fibers of this layer's set: shutdown interrupts them.
      const fork = yield* FiberSet.makeRuntime<never>()
      const reads = makeCatchUpReads(log, fork)
      let following = 0
      const openGauge = metrics.labelled(Metrics.subscriptions, {})
      const owner: SubscriptionOwner = {
        release: (taskId, subscription) => {
          openGauge(--following)
          feed.detach(taskId, subscription)
        }
      }

      const startFrom = (request: FollowRequest, head: TaskHead): EventId =>
        request.after ?? (request.history === false ? head.last ?? ZeroId : ZeroId)

      const open = (request: FollowRequest) =>
        Effect.gen(function*(): Effect.fn.Return<Opening, TaskNotFound | LogUnavailable> {
          const head = yield* log.head(request.taskId)
          if (ownedByOther(head, request.agentId)) {
            return yield* new TaskNotFound({ agentId: request.agentId, taskId: request.taskId })
          }
          const after = startFrom(request, head)
          if (head.last?.terminal && compareIds(after, head.last) >= 0) return { _tag: "Ended", reason: endStatusOf(head.last) }
          // Events between the resume id and the oldest retained one may be gone: say so before the rest.
          const oldest = head.first
          const resyncFrom = request.after !== undefined && head.trimmed && oldest !== undefined &&
              compareIds(request.after, oldest) < 0
            ? formatEventId(oldest)
            : undefined
          const upToDate = !head.calls && resyncFrom === undefined && (head.last === undefined || compareIds(after, head.last) >= 0)
          return {
            _tag: "Ready",
            ended: head.last?.terminal === true,
            start: (sink: Sink) => start(request, after, resyncFrom, upToDate, sink),
            follow: (sink: Sink) => follow(request, after, resyncFrom, upToDate, sink)
          }
        })

      // Flat on purpose: closures made inside a generator would keep its whole
      // frame alive for as long as the subscription lives (memory per idle client).
      const follow = (request: FollowRequest, after: EventId, resyncFrom: string | undefined, upToDate: boolean, sink: Sink): Subscription => {
        const subscription = new Subscription(reads, fork, request.taskId, {
          agentId: request.agentId,
          filter: request.filter ?? acceptAll,
          // A live-only stream gets live chunks only (SPEC §8.2).
          compact: request.after !== undefined || request.history !== false,
          droppedOtherAgent
        }, sink, after, owner)
        openGauge(++following)
        try {
          // Among the task's live listeners before the channel opens: nothing published once it is established is missed.
          subscription.begin(feed.attach(request.taskId, subscription), resyncFrom, upToDate)
        } catch (error) {
          subscription.close()
          throw error
        }
        return subscription
      }

      const start = (request: FollowRequest, after: EventId, resyncFrom: string | undefined, upToDate: boolean, sink: Sink) =>
        Effect.acquireRelease(
          Effect.sync(() => follow(request, after, resyncFrom, upToDate, sink)),
          (subscription) => Effect.sync(() => subscription.close())
        ).pipe(Effect.tap((subscription) => subscription.settled))

      return TaskStream.of({ open })
    })
  )
}
