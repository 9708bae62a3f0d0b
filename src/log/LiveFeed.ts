/**
 * Live delivery of a task's events to this instance's listeners (SPEC §2):
 * in-process for the memory log, a Redis channel per followed task otherwise.
 */
import { Context, type Effect, type Scope } from "effect"
import type { EventId, LogEvent } from "../events/envelope.ts"
import type { LogUnavailable } from "./EventLog.ts"

/** Receives a task's live events, in id order, on the instance that listens. */
export interface LiveListener {
  /**
   * A live event and, for a stored one, `prev`: the id of the stored event
   * before it in the log (the message's, not the event's). A listener whose
   * last id is older than `prev` has missed events.
   */
  onEvent(event: LogEvent, prev: EventId | undefined): void
  /** The live feed may have missed events (its connection was lost): catch up from the log. */
  onGap(): void
}

export class LiveFeed extends Context.Service<LiveFeed, {
  /**
   * Receive the task's live events until the scope closes. Completes once the
   * live feed is established, so a read started afterwards misses nothing.
   */
  listen(taskId: string, listener: LiveListener): Effect.Effect<void, never, Scope.Scope>
  /**
   * `listen` without a scope, for a listener that owns its own lifetime: receive
   * until `detach`; the effect completes once the live feed is established.
   */
  attach(taskId: string, listener: LiveListener): Effect.Effect<void>
  detach(taskId: string, listener: LiveListener): void
  /** Succeeds when every live subscription this instance needs is in place. */
  readonly ready: Effect.Effect<void, LogUnavailable>
  /** How many tasks have a live subscription on this instance. */
  readonly liveTaskCount: () => number
}>()("taskstream/LiveFeed") {}
