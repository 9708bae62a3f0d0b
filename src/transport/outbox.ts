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
}

/** The most connections one flush round writes before it yields to I/O. */
export const FLUSH_SLICE = 512

interface DrainWaiter {
  readonly queued: () => number
  readonly mark: number
  readonly ready: () => void
}

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

  private readonly flushSlice = () => {
    this.immediate = undefined
    this.roundTime = Date.now()
    const dirty = this.dirty
    const end = Math.min(dirty.length, this.next + FLUSH_SLICE)
    for (let i = this.next; i < end; i++) {
      const outbox = dirty[i]
      outbox.queued = false
      outbox.flush()
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

  schedule(outbox: Outbox): void {
    if (outbox.queued) return
    outbox.queued = true
    this.dirty.push(outbox)
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flushSlice)
    }
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
   */
  whenDrained(queued: () => number, mark: number, ready: () => void): () => void {
    const waiter: DrainWaiter = { queued, mark, ready }
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
    for (const waiter of this.drainWaiters) {
      if (waiter.queued() >= waiter.mark) continue
      this.drainWaiters.delete(waiter)
      waiter.ready()
    }
    if (this.drainWaiters.size > 0) this.drainTimer = setTimeout(this.checkDrains, this.drainCheckMs())
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
