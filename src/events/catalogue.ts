/**
 * The registry as `GET /event-types` serves it (SPEC §10.2): every type,
 * built-in and custom, with its category, how it ends a task (`terminal`:
 * the ending, or false), whether it is live-only, and the JSON Schema of its
 * `data` — generated from the built-ins' Schema definitions, as given for
 * custom types.
 */
import { payloadJsonSchema } from "./payloads.ts"
import { type Ending, type EventRegistry, isBuiltinType } from "./registry.ts"

export interface TypeDescription {
  readonly category: string
  readonly terminal: Ending | false
  readonly ephemeral: boolean
  readonly payload: Record<string, unknown>
}

export interface Catalogue {
  readonly types: Record<string, TypeDescription>
  readonly categories: ReadonlyArray<string>
}

export const catalogue = (registry: EventRegistry): Catalogue => ({
  types: Object.fromEntries(
    registry.types.map((type) => {
      const kind = registry.kindOf(type)!
      return [type, {
        category: kind.category,
        terminal: kind.ends ?? false,
        ephemeral: kind.ephemeral === true,
        payload: isBuiltinType(type) ? payloadJsonSchema(type) : registry.customType(type)!.payload
      }]
    })
  ),
  categories: registry.categories
})
