/**
 * The typed events a client receives, and the few registry facts a browser
 * needs at run time (category, how a type ends a task). They come from the
 * registry's plain-data table, so a browser bundle carries no payload schemas.
 */
import { BuiltinTypes, type Category, type Ending, type EventType, EventTypes, type TypeKind } from "../events/registry.ts"
import type { PayloadOf } from "../events/registry.ts"

export type { Category, EventType, PayloadOf } from "../events/registry.ts"
export { EventTypes } from "../events/registry.ts"

type Specs = typeof BuiltinTypes

/** Types that end a task's stream. */
export type TerminalType = { [T in EventType]: Specs[T] extends { readonly ends: Ending } ? T : never }[EventType]
/** Live-only types (LLM token chunks): never stored, so they carry no id. */
export type EphemeralType = { [T in EventType]: Specs[T] extends { readonly ephemeral: true } ? T : never }[EventType]

/** One event of type `T` as the gateway sends it (the SPEC §3 envelope). */
export type TaskEvent<T extends EventType = EventType> = {
  readonly [K in T]: {
    readonly id: K extends EphemeralType ? undefined : string
    readonly type: K
    readonly agentId: string
    readonly taskId: string
    readonly time: string
    readonly data: PayloadOf<K>
  }
}[T]

export const CategoryOf = Object.fromEntries(EventTypes.map((type) => [type, BuiltinTypes[type].category])) as {
  readonly [T in EventType]: Specs[T]["category"]
}

export const Categories: ReadonlyArray<Category> = [...new Set(Object.values(CategoryOf))]

/** How a task ended, by its terminal event. */
export const EndOf = Object.fromEntries(
  EventTypes.flatMap((type) => {
    const kind: TypeKind = BuiltinTypes[type]
    return kind.ends === undefined ? [] : [[type, kind.ends]]
  })
) as { readonly [T in TerminalType]: Specs[T]["ends"] }

/** How a task's stream ended: by a terminal event, or `ended` when the server only said it had (204). */
export type TaskEnd = "completed" | "failed" | "cancelled" | "ended"

export const isTerminalType = (type: EventType): type is TerminalType => Object.hasOwn(EndOf, type)

/** A `types` filter: event types and/or categories, custom ones included (terminal events always pass). */
export type TypeSelector = ReadonlyArray<EventType | Category | (string & {})>

/** The log told the client that events between its position and `oldest` were trimmed away. */
export interface Resync {
  readonly reason: string
  readonly oldest: string
}

/** What every way of following a task takes: where to start, what to deliver, and the callbacks of its events. */
export interface FollowCallbacks {
  /** Every event; one of a custom type (the gateway's EVENT_TYPES_FILE) comes with its own `type` name. */
  readonly onEvent: (event: TaskEvent) => void
  /** Only these types and/or categories, custom ones included (terminal events always come). */
  readonly types?: TypeSelector
  /** Start after this event id (resume). */
  readonly since?: string
  /** Without `since`: replay the stored history first (default) or start with new events only. */
  readonly history?: boolean
  /** The task ended; nothing more comes. A task of another agent is refused at open (`onError`, `not_found`). */
  readonly onEnd?: (end: TaskEnd, event?: TaskEvent) => void
  /** Events between our position and `oldest` were trimmed from the log; what follows starts at `oldest`. */
  readonly onResync?: (resync: Resync) => void
}

/** A position in a task's log, `<ms>-<seq>`: newer when greater. */
export const isAfter = (id: string, than: string | undefined): boolean => {
  if (than === undefined) return true
  const [ms, seq] = id.split("-").map(Number)
  const [thanMs, thanSeq] = than.split("-").map(Number)
  return ms > thanMs || (ms === thanMs && seq > thanSeq)
}
