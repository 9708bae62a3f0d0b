/**
 * Coalesced writes (SPEC §2): a transport marks a connection dirty when a
 * frame is queued, and every dirty connection is flushed once after the
 * current event-loop turn — so frames that become ready together (a burst of
 * live events, a page of history) reach a client in one write.
 */
export interface Outbox {
  /** Set while the connection waits in the flush queue. */
  queued: boolean
  flush(): void
}

let dirty: Array<Outbox> = []
let spare: Array<Outbox> = []
let scheduled = false

/** A clock read once per flush round, for connections that track their last write. */
export let roundTime = Date.now()

const flushAll = () => {
  scheduled = false
  roundTime = Date.now()
  const round = dirty
  dirty = spare
  for (let i = 0; i < round.length; i++) {
    const outbox = round[i]
    outbox.queued = false
    outbox.flush()
  }
  round.length = 0
  spare = round
}

export const scheduleFlush = (outbox: Outbox): void => {
  if (outbox.queued) return
  outbox.queued = true
  dirty.push(outbox)
  if (!scheduled) {
    scheduled = true
    queueMicrotask(flushAll)
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

/**
 * Pacing (SPEC §8.1): waiters for a connection's queue to fall under a mark.
 * Runtimes tell no one when a socket drains, so waiting connections are
 * checked on one timer that runs only while someone waits — every 5 ms, less
 * often when thousands wait (each check costs a little).
 */
interface DrainWaiter {
  readonly queued: () => number
  readonly mark: number
  readonly ready: () => void
}

const drainWaiters = new Set<DrainWaiter>()
let drainTimer: ReturnType<typeof setTimeout> | undefined

const drainCheckMs = () => Math.min(100, Math.max(5, drainWaiters.size / 100))

const checkDrains = () => {
  drainTimer = undefined
  for (const waiter of drainWaiters) {
    if (waiter.queued() >= waiter.mark) continue
    drainWaiters.delete(waiter)
    waiter.ready()
  }
  if (drainWaiters.size > 0) drainTimer = setTimeout(checkDrains, drainCheckMs())
}

/** Call `ready` once `queued()` is under `mark` (at the next check); returns a cancel. */
export const whenDrained = (queued: () => number, mark: number, ready: () => void): () => void => {
  const waiter: DrainWaiter = { queued, mark, ready }
  drainWaiters.add(waiter)
  drainTimer ??= setTimeout(checkDrains, drainCheckMs())
  return () => void drainWaiters.delete(waiter)
}
