/**
 * Shared history reads: when many clients open the same task at once (a page
 * reload storm, a popular task), they read the same pages. Concurrent
 * identical reads share one request, and full pages — immutable, since ids
 * only grow — are kept for a moment, so a storm costs one read per page and
 * each event is parsed and encoded once instead of once per client.
 */
import { Effect, Exit } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { EventLog, LogUnavailable } from "./EventLog.ts"

type Page = ReadonlyArray<LogEvent>

export interface SharedReadsOptions {
  /** How long a full page is kept. */
  readonly ttlMs: number
  /** How many full pages are kept at most (oldest dropped first). */
  readonly maxPages: number
}

export const shareReads = (log: EventLog["Service"], { maxPages, ttlMs }: SharedReadsOptions): EventLog["Service"] => {
  const inFlight = new Map<string, Promise<Exit.Exit<Page, LogUnavailable>>>()
  const fullPages = new Map<string, { readonly page: Page; readonly until: number }>()

  const keep = (key: string, page: Page) => {
    fullPages.delete(key)
    fullPages.set(key, { page, until: Date.now() + ttlMs })
    if (fullPages.size > maxPages) fullPages.delete(fullPages.keys().next().value!)
  }

  const read = (taskId: string, after: EventId, limit: number): Effect.Effect<Page, LogUnavailable> =>
    Effect.suspend(() => {
      const key = `${taskId} ${after.ms}-${after.seq} ${limit}`
      const kept = fullPages.get(key)
      if (kept !== undefined && kept.until > Date.now()) return Effect.succeed(kept.page)
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
