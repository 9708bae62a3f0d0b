/**
 * The `types` filter (SPEC §4.1): a comma list of event types and/or
 * categories. Terminal events always pass, whatever the filter says, so a
 * filtered stream still learns that the task ended.
 */
import { Categories, type Category, categoryOf, type EventType, EventTypes, isEventType, TerminalTypes } from "./registry.ts"

export type TypeFilter = (type: EventType) => boolean

export const acceptAll: TypeFilter = () => true

const isCategory = (value: string): value is Category => (Categories as ReadonlyArray<string>).includes(value)

/** Parse a filter; returns the first unknown name as an error message. */
export const parseTypeFilter = (
  text: string | undefined
): { readonly filter: TypeFilter } | { readonly error: string } => {
  if (text === undefined || text.trim() === "") return { filter: acceptAll }
  const allowed = new Set<EventType>()
  for (const raw of text.split(",")) {
    const name = raw.trim()
    if (name === "") continue
    if (isEventType(name)) {
      allowed.add(name)
    } else if (isCategory(name)) {
      for (const type of EventTypes) if (categoryOf(type) === name) allowed.add(type)
    } else {
      return { error: `unknown event type or category '${name.slice(0, 64)}'` }
    }
  }
  if (allowed.size === 0) return { error: "types lists no event type or category" }
  for (const type of TerminalTypes) allowed.add(type)
  return { filter: (type) => allowed.has(type) }
}
