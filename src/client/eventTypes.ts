/**
 * The gateway's event registry as a client needs it at run time (SPEC §10.2):
 * every type name, its category and how a terminal one ends a task. The
 * built-ins are known without asking; a gateway's custom types
 * (`EVENT_TYPES_FILE`) come from its `GET /api/v1/event-types`.
 */
import type { Ending } from "../events/registry.ts"
import { CategoryOf, EndOf, EventTypes } from "./events.ts"
import { apiUrl, currentToken, type Endpoint } from "./url.ts"

export interface TypeInfo {
  readonly category: string
  /** How an event of this type ends its task, or false. */
  readonly terminal: Ending | false
}

export interface EventTypeTable {
  readonly types: ReadonlyMap<string, TypeInfo>
  readonly categories: ReadonlySet<string>
}

const tableOf = (entries: Iterable<readonly [string, TypeInfo]>): EventTypeTable => {
  const types = new Map(entries)
  return { types, categories: new Set([...types.values()].map((type) => type.category)) }
}

/** The built-in types: what a client knows before (or without) asking the gateway. */
export const BuiltinEventTypes: EventTypeTable = tableOf(
  EventTypes.map((type) => [type, { category: CategoryOf[type], terminal: (EndOf as Record<string, Ending>)[type] ?? false }])
)

/** How an event of `type` ends its task, or undefined when it does not (or the table does not know the type). */
export const endingOf = (table: EventTypeTable, type: string): Ending | undefined => table.types.get(type)?.terminal || undefined

/** The category of `type`, or undefined for a type the table does not know. */
export const categoryOf = (table: EventTypeTable, type: string): string | undefined => table.types.get(type)?.category

/**
 * The gateway's registry, built-in and custom types (`GET /api/v1/event-types`).
 * Rejects when the gateway cannot be reached or does not answer 200.
 */
export const fetchEventTypes = async (endpoint: Endpoint, fetchImpl: typeof fetch = globalThis.fetch): Promise<EventTypeTable> => {
  const response = await fetchImpl(apiUrl(endpoint.baseUrl, await currentToken(endpoint.token), "/event-types"), { cache: "no-store" })
  if (!response.ok) throw new Error(`GET /event-types answered ${response.status}`)
  const body = (await response.json()) as { types: Record<string, { category: string; terminal: Ending | false }> }
  return tableOf(Object.entries(body.types).map(([type, { category, terminal }]) => [type, { category, terminal }]))
}
