/**
 * Shared history reads: when many clients open the same task at once (a page
 * reload storm, a popular task), they read the same pages. Concurrent
 * identical reads share one request, and full pages — immutable, since ids
 * only grow — are kept for a moment, so a storm costs one read per page and
 * each event is parsed and encoded once instead of once per client. What is
 * kept is bounded by its size in bytes (a page of 500 large events weighs
 * far more than one of small ones), oldest dropped first.
 */
import { Cache, Data, Effect, Exit } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { EventLog, LogUnavailable } from "./EventLog.ts"

type Page = ReadonlyArray<LogEvent>

export interface SharedReadsOptions {
  /** How long a full page is kept. */
  readonly ttlMs: number
  /** How many bytes of kept pages at most (by `pageBytes`; oldest dropped first). */
  readonly maxBytes: number
}

/** What an event costs in memory beyond its data: the envelope fields, ids and the object itself. */
const EVENT_OVERHEAD_BYTES = 256

/** A page's size: its events' data (the bulk, as JSON text) plus a fixed overhead per event. */
export const pageBytes = (page: Page): number => {
  let bytes = 0
  for (const event of page) bytes += event.dataJson.length + EVENT_OVERHEAD_BYTES
  return bytes
}

/** One read, compared by value: the cache's key. */
class PageKey extends Data.Class<{ readonly taskId: string; readonly ms: number; readonly seq: number; readonly limit: number }> {
  get id(): string {
    return `${this.taskId} ${this.ms}-${this.seq} ${this.limit}`
  }
}

/**
 * `log` with shared reads; its other methods are passed through unchanged.
 * An Effect `Cache` shares identical reads in flight and keeps full pages for
 * `ttlMs`; what it keeps is bounded here by bytes (the cache itself counts
 * entries), by invalidating the oldest kept pages.
 */
export const shareReads = <Log extends Pick<EventLog["Service"], "read">>(log: Log, { maxBytes, ttlMs }: SharedReadsOptions) =>
  Effect.gen(function*() {
    /** The kept pages by their key's id, oldest first, with their bytes. */
    const kept = new Map<string, { readonly key: PageKey; readonly bytes: number }>()
    let keptBytes = 0

    const forget = (id: string) => {
      const page = kept.get(id)
      if (page === undefined) return
      kept.delete(id)
      keptBytes -= page.bytes
    }

    /** A full page that fits is kept; a short one is not (more events may follow it), nor a failure. */
    const keep = (exit: Exit.Exit<Page, LogUnavailable>, key: PageKey): Effect.Effect<void> => {
      if (Exit.isFailure(exit) || exit.value.length !== key.limit) return Effect.void
      const bytes = pageBytes(exit.value)
      if (bytes > maxBytes) return Effect.void
      kept.set(key.id, { key, bytes })
      keptBytes += bytes
      const evicted: Array<PageKey> = []
      for (const [id, oldest] of kept) {
        if (keptBytes <= maxBytes) break
        evicted.push(oldest.key)
        forget(id)
      }
      return Effect.forEach(evicted, (oldest) => Cache.invalidate(cache, oldest), { discard: true })
    }

    const cache: Cache.Cache<PageKey, Page, LogUnavailable> = yield* Cache.makeWith(
      (key: PageKey) =>
        // Looked up when missing or expired: the page kept before under this key is gone.
        Effect.sync(() => forget(key.id)).pipe(
          Effect.andThen(log.read(key.taskId, { ms: key.ms, seq: key.seq }, key.limit)),
          Effect.onExit((exit) => keep(exit, key))
        ),
      // Bounded by bytes (in `keep`), not by entries; what `keep` did not keep expires at once.
      { capacity: Infinity, timeToLive: (_exit, key) => (kept.has(key.id) ? ttlMs : 0) }
    )

    const read = (taskId: string, after: EventId, limit: number): Effect.Effect<Page, LogUnavailable> =>
      Cache.get(cache, new PageKey({ taskId, ms: after.ms, seq: after.seq, limit }))

    return { ...log, read }
  })
