/**
 * Coalesced writes (SPEC §2): a transport marks a connection dirty when a
 * frame is queued, and every dirty connection is flushed once after the
 * current event-loop turn — so frames that become ready together (a burst of
 * live events, a page of history) reach a client in one write.
 *
 * A round flushes at most FLUSH_SLICE connections, then yields to I/O
 * (`setImmediate`: Bun polls its sockets between immediates, and unlike
 * `setTimeout(0)` it does not slow the fan-out down to the timer's pace) and
 * goes on with the rest: an HTTP request is answered between slices instead of
 * behind a fan-out to every connection. A connection waiting in the queue takes
 * further frames into its pending write, so its frames stay in order and
 * coalesced; one queued meanwhile goes to the back of the queue.
 *
 * One `Writes` per gateway (its `Connections` owns it): two gateways in one
 * process share no flush queue, clock, pacing timer or delivery count.
 */
import { TRANSPORTS, type Transport } from "./transports.ts"
export interface Outbox {
  /** Set while the connection waits in the flush queue. */
  queued: boolean
  flush(): void
  /** Its flush threw (the runtime's stream or socket in a state it should not be in): close it for good. */
  failed(): void
}

/** The most connections one flush round writes before it yields to I/O. */
export const FLUSH_SLICE = 512

interface DrainWaiter {
  readonly queued: () => number
  readonly mark: number
  readonly ready: () => void
  /** A check found its queue at or over the mark: its link, not the gateway, held it back. */
  held: boolean
}

/**
 * What the waiters readied by one drain check may queue at most, together
 * (each up to its mark): a check readying 2000 catching-up clients at once
 * made one event-loop turn of ≈ 0.5 GB of frames, which starved every other
 * connection (and the live events) for that long.
 */
export const DRAIN_BYTES_PER_CHECK = 16 * 1024 * 1024

export class Writes {
  /** A clock read once per flush round, for connections that track their last write. */
  roundTime = Date.now()
  /** Connections waiting to be flushed, in order; those before `next` are done. */
  private dirty: Array<Outbox> = []
  private next = 0
  /** A flush is due: on a microtask (a new round) or an immediate (the rest of a round). */
  private scheduled = false
  private immediate: ReturnType<typeof setImmediate> | undefined
  /** Events written per transport since the last scrape: the per-write path only adds to plain numbers. */
  private readonly delivered = Object.fromEntries(TRANSPORTS.map((transport) => [transport, 0])) as Record<Transport, number>
  private readonly drainWaiters = new Set<DrainWaiter>()
  private drainTimer: ReturnType<typeof setTimeout> | undefined
  private lastJoin: ReadonlyArray<Uint8Array> = []
  private lastJoined: Uint8Array = new Uint8Array(0)

  /** `onError`: told of a connection whose write threw (it is closed; the others go on). */
  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  private readonly flushSlice = () => {
    this.immediate = undefined
    this.roundTime = Date.now()
    const dirty = this.dirty
    const end = Math.min(dirty.length, this.next + FLUSH_SLICE)
    for (let i = this.next; i < end; i++) {
      const outbox = dirty[i]
      outbox.queued = false
      // One connection's failure must not end the round: the queue would stay marked as scheduled,
      // and no connection of the gateway would be written to again.
      try {
        outbox.flush()
      } catch (error) {
        this.flushFailed(outbox, error)
      }
    }
    this.next = end
    if (end < dirty.length) {
      // Under a fan-out that never lets the queue empty, drop the done part now and then.
      if (end >= 8 * FLUSH_SLICE) {
        dirty.splice(0, end)
        this.next = 0
      }
      this.immediate = setImmediate(this.flushSlice)
      return
    }
    dirty.length = 0
    this.next = 0
    this.scheduled = false
  }

  private flushFailed(outbox: Outbox, error: unknown): void {
    try {
      outbox.failed()
    } catch {
      // Past saving: it is out of the queue, and the others still flush.
    }
    try {
      this.onError(error)
    } catch {
      // Not even said: the round still goes on.
    }
  }

  schedule(outbox: Outbox): void {
    if (outbox.queued) return
    outbox.queued = true
    this.dirty.push(outbox)
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flushSlice)
    }
  }

  /**
   * `joinChunks`, shared: connections flushed one after another with the same
   * frames (the subscribers of one task in a burst, clients catching up from
   * the same page) get the same buffer instead of a copy each — 200 clients of
   * a burst copied ≈ 1.4 GB in 2 s, which set the peak RSS. The last join is
   * kept until the next one.
   */
  join(chunks: ReadonlyArray<Uint8Array>): Uint8Array {
    if (chunks.length === 1) return chunks[0]
    const last = this.lastJoin
    if (chunks.length === last.length) {
      let same = true
      for (let i = 0; same && i < chunks.length; i++) same = chunks[i] === last[i]
      if (same) return this.lastJoined
    }
    this.lastJoin = chunks.slice()
    this.lastJoined = joinChunks(chunks)
    return this.lastJoined
  }

  /** Count `frames` events written by `transport` in one flush. */
  countDelivered(transport: Transport, frames: number): void {
    this.delivered[transport] += frames
  }

  /** The events written per transport since the last call (for the metrics, at scrape). */
  takeDelivered(): Readonly<Record<Transport, number>> {
    const taken = { ...this.delivered }
    for (const transport of TRANSPORTS) this.delivered[transport] = 0
    return taken
  }

  /**
   * Pacing (SPEC §8.1): call `ready` once `queued()` is under `mark` (at the
   * next check); returns a cancel. Runtimes tell no one when a socket drains,
   * so waiting connections are checked on one timer that runs only while
   * someone waits — every 5 ms, less often when thousands wait (each check
   * costs a little).
   *
   * One check readies waiters for at most DRAIN_BYTES_PER_CHECK (the rest at
   * the next check, at once), those held back by their own link first: a
   * client on a slow link that has room again is fed before the clients only
   * the gateway's speed holds back — else, while 2000 clients catch up, a
   * client on a 2 MB/s link got a 2000th of the gateway's output and its link
   * idled between rounds.
   */
  whenDrained(queued: () => number, mark: number, ready: () => void): () => void {
    const waiter: DrainWaiter = { queued, mark, ready, held: false }
    this.drainWaiters.add(waiter)
    this.drainTimer ??= setTimeout(this.checkDrains, this.drainCheckMs())
    return () => void this.drainWaiters.delete(waiter)
  }

  /** Stop the pacing timer (shutdown). */
  stop(): void {
    clearImmediate(this.immediate)
    clearTimeout(this.drainTimer)
    this.drainTimer = undefined
    this.drainWaiters.clear()
  }

  private drainCheckMs(): number {
    return Math.min(100, Math.max(5, this.drainWaiters.size / 100))
  }

  private readonly checkDrains = () => {
    this.drainTimer = undefined
    let budget = DRAIN_BYTES_PER_CHECK
    /** Ready `waiter`, `queued` bytes behind: it may add up to its mark, out of this check's budget. */
    const ready = (waiter: DrainWaiter, queued: number) => {
      budget -= waiter.mark - queued
      this.drainWaiters.delete(waiter)
      waiter.ready()
    }
    /** Under their mark, never held back: readied after the held ones, while the budget lasts. */
    const others: Array<DrainWaiter> = []
    // A readied waiter's catch-up runs on at once and may wait again: it waits for the next check.
    for (const waiter of Array.from(this.drainWaiters)) {
      if (!this.drainWaiters.has(waiter)) continue
      const queued = waiter.queued()
      if (queued >= waiter.mark) {
        waiter.held = true
        continue
      }
      if (!waiter.held) {
        others.push(waiter)
        continue
      }
      if (budget > 0) ready(waiter, queued)
    }
    let left = false
    for (const waiter of others) {
      if (budget <= 0) {
        left = true
        break
      }
      // Another waiter readied before it may have written to the same connection: ask again.
      const queued = waiter.queued()
      if (queued < waiter.mark && this.drainWaiters.has(waiter)) ready(waiter, queued)
    }
    if (this.drainWaiters.size > 0) this.drainTimer = setTimeout(this.checkDrains, left || budget <= 0 ? 0 : this.drainCheckMs())
  }
}

/** Join queued chunks into one buffer (a single chunk is passed through, shared). */
export const joinChunks = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (chunks.length === 1) return chunks[0]
  let size = 0
  for (const chunk of chunks) size += chunk.byteLength
  const joined = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    joined.set(chunk, offset)
    offset += chunk.byteLength
  }
  return joined
}
