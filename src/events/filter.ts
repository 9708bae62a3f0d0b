/**
 * The `types` filter (SPEC §4.1, §10.2): a comma list of event types and/or
 * categories, built-in or custom. Terminal events always pass, whatever the
 * filter says, so a filtered stream still learns that the task ended.
 */
import type { EventRegistry } from "./registry.ts"

export type TypeFilter = (type: string) => boolean

export const acceptAll: TypeFilter = () => true

/** Parse a filter against `registry`; returns the first unknown name as an error message. */
export const parseTypeFilter = (
  registry: EventRegistry,
  text: string | undefined
): { readonly filter: TypeFilter; readonly key: string } | { readonly error: string } => {
  if (text === undefined || text.trim() === "") return { filter: acceptAll, key: "*" }
  const allowed = new Set<string>()
  for (const raw of text.split(",")) {
    const name = raw.trim()
    if (name === "") continue
    if (registry.isKnown(name)) {
      allowed.add(name)
    } else if (registry.categories.includes(name)) {
      for (const type of registry.types) if (registry.categoryOf(type) === name) allowed.add(type)
    } else {
      return { error: `unknown event type or category '${name.slice(0, 64)}'` }
    }
  }
  if (allowed.size === 0) return { error: "types lists no event type or category" }
  for (const type of registry.types) if (registry.isTerminal(type)) allowed.add(type)
  // The key names the types that pass: filters written differently that pass the same ones share it.
  return { filter: (type) => allowed.has(type), key: [...allowed].sort().join(",") }
}
