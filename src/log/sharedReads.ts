/**
 * Shared history reads: when many clients open the same task at once (a page
 * reload storm, a popular task), they read the same pages. Concurrent
 * identical reads share one request, and full pages — immutable, since ids
 * only grow — are kept for a moment, so a storm costs one read per page and
 * each event is parsed and encoded once instead of once per client. What is
 * kept is bounded by its size in bytes (a page of 500 large events weighs
 * far more than one of small ones), oldest dropped first.
 */
import { Effect, Exit } from "effect"
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

/** `log` with shared reads; its other methods are passed through unchanged. */
export const shareReads = <Log extends Pick<EventLog["Service"], "read">>(log: Log, { maxBytes, ttlMs }: SharedReadsOptions): Log => {
  const inFlight = new Map<string, Promise<Exit.Exit<Page, LogUnavailable>>>()
  const fullPages = new Map<string, { readonly page: Page; readonly bytes: number; readonly until: number }>()
  let keptBytes = 0

  const forget = (key: string) => {
    const kept = fullPages.get(key)
    if (kept === undefined) return
    fullPages.delete(key)
    keptBytes -= kept.bytes
  }

  const keep = (key: string, page: Page) => {
    forget(key)
    const bytes = pageBytes(page)
    if (bytes > maxBytes) return
    fullPages.set(key, { page, bytes, until: Date.now() + ttlMs })
    keptBytes += bytes
    while (keptBytes > maxBytes) forget(fullPages.keys().next().value!)
  }

  const read = (taskId: string, after: EventId, limit: number): Effect.Effect<Page, LogUnavailable> =>
    Effect.suspend(() => {
      const key = `${taskId} ${after.ms}-${after.seq} ${limit}`
      const kept = fullPages.get(key)
      if (kept !== undefined) {
        if (kept.until > Date.now()) return Effect.succeed(kept.page)
        forget(key)
      }
      let pending = inFlight.get(key)
      if (pending === undefined) {
        pending = Effect.runPromiseExit(log.read(taskId, after, limit)).then((exit) => {
          inFlight.delete(key)
          if (Exit.isSuccess(exit) && exit.value.length === limit) keep(key, exit.value)
          return exit
        })
        inFlight.set(key, pending)
      }
      const shared = pending
      return Effect.flatMap(Effect.promise(() => shared), (exit) => exit)
    })

  return { ...log, read }
}
