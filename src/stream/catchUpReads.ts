/**
 * Catch-up reads (SPEC §8.4): the log reads a subscription makes to catch up
 * (its position's head, the calls in flight, history pages) retry while the
 * log is away, with capped exponential backoff and jitter — and identical
 * reads of one task are shared. After a subscriber reconnect every client of
 * a task catches up from the same position at once: they join one read (and
 * its retries) instead of each running its own, so 10 000 clients of a task
 * cost one read, not 10 000. A shared read stops when its last reader leaves.
 * A sign that the log is back (a live event, a subscriber reconnect) ends
 * the wait before the next attempt.
 *
 * A reader joins only a read started after the moment it asks from (`since`,
 * taken once its live feed is established): an earlier read could miss an
 * event appended before that moment and published before it listened.
 *
 * A shared read runs as a fiber of the caller's FiberSet (`fork`: the
 * TaskStream layer's), with no reader of its own: the gateway's shutdown
 * interrupts one still retrying, and nothing runs detached.
 *
 * A history page read by many goes on in turns: at most READERS_PER_TURN
 * readers go on in one event-loop turn, the rest in the next ones, taking
 * turns with the readers of other pages. 2000 clients resuming from one page
 * each passed on the whole page in one turn (≈ 0.5 GB of frames, a second);
 * clients elsewhere in the log (50 far behind, on slow links) got one page
 * per such round — a 2000th of the gateway's output — and live events waited.
 * Each turn serves the pages furthest back in the log first (by the time of
 * their position): the readers of one page go on in batches, each batch reads
 * the next page on its own, and in plain rotation the page of the 50 far
 * behind waited for every batch of the 2000 (≈ 30 turns, 1.5 s) — their links
 * idled until the 2000 were done. Serving those furthest back first also keeps
 * the batches of one crowd together (the laggards catch up with the others
 * and share their reads again). The order is by place within a task only: the
 * tasks take turns, so the clients of one task never wait for another task's
 * (positions of different tasks say nothing of how far behind their clients
 * are). Within a task, a client near the head waits while clients further
 * back fill the turns — until they reach it and share its reads. (Mixing in
 * service in order of waiting — pages that had waited 16 turns or 1 s first,
 * a quarter of each turn, or every 4th turn — split the storm's 2000 into ever
 * smaller batches, each reading its own pages: everyone caught up 1–4 s later.)
 */
import { Effect, Fiber } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { EventLog, InflightCall, TaskHead } from "../log/EventLog.ts"

export interface Backoff {
  readonly baseMs: number
  readonly capMs: number
}

/** 250 ms, 500 ms, 1 s, … capped at 10 s. */
export const CATCH_UP_BACKOFF: Backoff = { baseMs: 250, capMs: 10_000 }

/** The wait before attempt `failures + 1`: exponential, capped, each ±20 % so instances do not retry in step. */
export const backoffDelay = ({ baseMs, capMs }: Backoff, failures: number): number =>
  Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30)) * (0.8 + 0.4 * Math.random())

/**
 * Readers of history pages that go on in one event-loop turn at most (each passes on about a
 * page): 16 pages of 300 B events are ≈ 3 MB of frames. With 64, a storm's turns each held
 * the loop ≈ 50 ms, and the reads and openings of the clients far behind waited behind them.
 */
export const READERS_PER_TURN = 16

interface Shared {
  readonly taskId: string
  /** Readers whose page came, waiting for their turn. */
  readonly waiting: Array<() => void>
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** The clock when it started. */
  readonly started: number
  /** A history page's place in the log (ms of the position), which orders the task's pages in turns; 0 for the rest. */
  readonly rank: number
  readers: number
  /** Ends the wait before the next attempt, while it waits. */
  wake: (() => void) | undefined
}

/** Runs a shared read as a fiber of the owner's scope. */
export type ForkRead = <A>(effect: Effect.Effect<A>) => Fiber.Fiber<A>

export interface CatchUpReads {
  /** The clock now: reads started from now on may be shared by a reader asking `since` this value. */
  now(): number
  /** The task's log answers again (a live event came): retry its waiting reads now. */
  wake(taskId: string): void
  head(taskId: string, since: number): Effect.Effect<TaskHead>
  inflight(taskId: string, since: number): Effect.Effect<ReadonlyArray<InflightCall>>
  read(taskId: string, after: EventId, limit: number, since: number): Effect.Effect<ReadonlyArray<LogEvent>>
}

const byRank = (a: Shared, b: Shared): number => a.rank - b.rank

export const makeCatchUpReads = (
  log: Pick<EventLog["Service"], "read" | "head" | "inflight">,
  fork: ForkRead,
  backoff: Backoff = CATCH_UP_BACKOFF
): CatchUpReads => {
  const running = new Map<string, Shared>()
  let clock = 0
  /** Per task, its pages with readers waiting for their turn; the tasks take turns in rotation. */
  const waitingPages = new Map<string, Array<Shared>>()
  const rotation: Array<string> = []
  /** Readers gone on in this turn; reset by the next turn. */
  let passed = 0
  let turnScheduled = false

  const scheduleTurn = () => {
    if (turnScheduled) return
    turnScheduled = true
    // The next event-loop turn, after I/O (as the flush slices of transport/outbox.ts).
    setImmediate(takeTurn)
  }

  const takeTurn = () => {
    turnScheduled = false
    passed = 0
    while (passed < READERS_PER_TURN && rotation.length > 0) {
      const taskId = rotation.shift()!
      const pages = waitingPages.get(taskId)!
      // Stable: the task's pages at the same place take turns in rotation.
      pages.sort(byRank)
      const shared = pages[0]
      const going = shared.waiting.splice(0, READERS_PER_TURN - passed)
      if (shared.waiting.length === 0) pages.shift()
      else pages.push(pages.shift()!)
      if (pages.length > 0) rotation.push(taskId)
      else waitingPages.delete(taskId)
      passed += going.length
      for (const resume of going) resume()
    }
    if (rotation.length > 0) scheduleTurn()
  }

  /** Go on now if this turn has room and nobody waits, else in a later turn. */
  const turn = (shared: Shared): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (rotation.length === 0 && passed < READERS_PER_TURN) {
        passed++
        scheduleTurn()
        return Effect.void
      }
      return Effect.callback<void>((resume) => {
        const go = () => resume(Effect.void)
        if (shared.waiting.length === 0) {
          const pages = waitingPages.get(shared.taskId)
          if (pages === undefined) {
            waitingPages.set(shared.taskId, [shared])
            rotation.push(shared.taskId)
          } else pages.push(shared)
        }
        shared.waiting.push(go)
        scheduleTurn()
        return Effect.sync(() => {
          const at = shared.waiting.indexOf(go)
          if (at < 0) return
          shared.waiting.splice(at, 1)
          if (shared.waiting.length === 0) leaveRotation(shared)
        })
      })
    })

  /** The last reader of `shared` waiting left: the page gives up its place (and its task, when it was the last). */
  const leaveRotation = (shared: Shared) => {
    const pages = waitingPages.get(shared.taskId)
    const at = pages?.indexOf(shared) ?? -1
    if (pages === undefined || at < 0) return
    pages.splice(at, 1)
    if (pages.length > 0) return
    waitingPages.delete(shared.taskId)
    rotation.splice(rotation.indexOf(shared.taskId), 1)
  }

  const pause = (shared: Shared, ms: number) =>
    Effect.callback<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), ms)
      shared.wake = () => {
        clearTimeout(timer)
        resume(Effect.void)
      }
      return Effect.sync(() => {
        clearTimeout(timer)
        shared.wake = undefined
      })
    })

  const retrying = <A>(shared: Shared, read: () => Effect.Effect<A, unknown>, failures = 0): Effect.Effect<A> =>
    Effect.suspend(read).pipe(
      Effect.catch(() => Effect.andThen(pause(shared, backoffDelay(backoff, failures + 1)), retrying(shared, read, failures + 1)))
    )

  const share = <A>(
    taskId: string,
    key: string,
    since: number,
    read: () => Effect.Effect<A, unknown>,
    /** A history page's place in the log: its readers go on in turns (see above). */
    turnsAt?: number
  ): Effect.Effect<A> =>
    Effect.suspend(() => {
      let shared = running.get(key)
      if (shared === undefined || shared.started <= since) {
        const started: Shared = { taskId, waiting: [], fiber: undefined, started: ++clock, rank: turnsAt ?? 0, readers: 0, wake: undefined }
        running.set(key, started)
        const fiber = fork(retrying(started, read))
        started.fiber = fiber
        fiber.addObserver(() => running.get(key) === started && running.delete(key))
        shared = started
      }
      const joined = shared
      joined.readers++
      const page = Fiber.join(joined.fiber!) as Effect.Effect<A>
      return (turnsAt === undefined ? page : Effect.tap(page, () => turn(joined))).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (--joined.readers > 0) return
          // The last reader left (a read still retrying is stopped).
          if (running.get(key) === joined) running.delete(key)
          const fiber = joined.fiber!
          if (fiber.pollUnsafe() === undefined) fiber.interruptUnsafe()
        }))
      )
    })

  return {
    now: () => clock,
    wake: (taskId) => {
      if (running.size === 0) return
      for (const shared of running.values()) if (shared.taskId === taskId) shared.wake?.()
    },
    head: (taskId, since) => share(taskId, `head ${taskId}`, since, () => log.head(taskId)),
    inflight: (taskId, since) => share(taskId, `inflight ${taskId}`, since, () => log.inflight(taskId)),
    read: (taskId, after, limit, since) =>
      share(taskId, `read ${taskId} ${after.ms}-${after.seq} ${limit}`, since, () => log.read(taskId, after, limit), after.ms)
  }
}
