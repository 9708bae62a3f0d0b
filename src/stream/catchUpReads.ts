/**
 * Catch-up reads (SPEC §8.4): the log reads a subscription makes to catch up
 * (its position's head, the calls in flight, history pages) retry while the
 * log is away, with capped exponential backoff and jitter — and identical
 * reads of one task are shared. After a subscriber reconnect every client of
 * a task catches up from the same position at once: they join one read (and
 * its retries) instead of each running its own, so 10 000 clients of a task
 * cost one read, not 10 000. A shared read stops when its last reader leaves.
 *
 * A reader joins only a read started after the moment it asks from (`since`,
 * taken once its live feed is established): an earlier read could miss an
 * event appended before that moment and published before it listened.
 */
import { Effect, Fiber, Schedule } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { EventLog, InflightCall, TaskHead } from "../log/EventLog.ts"

/** 250 ms, 500 ms, 1 s, … capped at 10 s, each ±20 %. */
export const catchUpRetry = Schedule.min([Schedule.exponential("250 millis"), Schedule.spaced("10 seconds")]).pipe(
  Schedule.jittered
)

interface Shared {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  /** The clock when it started. */
  readonly started: number
  readers: number
}

export interface CatchUpReads {
  /** The clock now: reads started from now on may be shared by a reader asking `since` this value. */
  now(): number
  head(taskId: string, since: number): Effect.Effect<TaskHead>
  inflight(taskId: string, since: number): Effect.Effect<ReadonlyArray<InflightCall>>
  read(taskId: string, after: EventId, limit: number, since: number): Effect.Effect<ReadonlyArray<LogEvent>>
}

export const makeCatchUpReads = (
  log: EventLog["Service"],
  retry: Schedule.Schedule<unknown, unknown> = catchUpRetry
): CatchUpReads => {
  const running = new Map<string, Shared>()
  let clock = 0

  const share = <A>(key: string, since: number, read: () => Effect.Effect<A, unknown>): Effect.Effect<A> =>
    Effect.suspend(() => {
      let shared = running.get(key)
      if (shared === undefined || shared.started <= since) {
        const fiber = Effect.runFork(Effect.suspend(read).pipe(Effect.retry(retry)))
        const started: Shared = { fiber, started: ++clock, readers: 0 }
        fiber.addObserver(() => running.get(key) === started && running.delete(key))
        running.set(key, started)
        shared = started
      }
      const joined = shared
      joined.readers++
      return (Fiber.join(joined.fiber) as Effect.Effect<A>).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (--joined.readers > 0) return
          // The last reader left (a read still retrying is stopped).
          if (running.get(key) === joined) running.delete(key)
          Effect.runFork(Fiber.interrupt(joined.fiber))
        }))
      )
    })

  return {
    now: () => clock,
    head: (taskId, since) => share(`head ${taskId}`, since, () => log.head(taskId)),
    inflight: (taskId, since) => share(`inflight ${taskId}`, since, () => log.inflight(taskId)),
    read: (taskId, after, limit, since) =>
      share(`read ${taskId} ${after.ms}-${after.seq} ${limit}`, since, () => log.read(taskId, after, limit))
  }
}
