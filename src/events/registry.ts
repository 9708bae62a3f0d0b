/**
 * The event registry (SPEC §3, §10.2): every workflow event type, its
 * category, how it ends a task (`ends`) or whether it is live-only
 * (`ephemeral`). Everything else — validation, filters, end reasons, task
 * status, the append script's table, the typed client — reads this one table.
 *
 * Built-in types are fixed here; custom types come from `EVENT_TYPES_FILE`.
 * A registry is a value (`EventRegistry`): each gateway builds its own from
 * its config (the `Registry` service), the publisher SDK its own from its
 * `eventTypesFile`, and code that knows only the built-ins uses
 * `builtinRegistry` — two gateways in one process never share custom types.
 * This file holds plain data only, so a browser bundle that imports it
 * carries no schema library; the payload schemas of the built-ins live in
 * `payloads.ts`.
 */

export const Categories = ["lifecycle", "llm", "tool", "budget", "flow", "step"] as const
/** A built-in category; custom types may add others. */
export type Category = (typeof Categories)[number]

/** How a terminal event ends its task: the task's status and the stream's end reason. */
export const Endings = ["completed", "failed", "cancelled"] as const
export type Ending = (typeof Endings)[number]

/** What the pipeline knows of any type, built-in or custom. */
export interface TypeKind {
  readonly category: string
  readonly ends?: Ending
  readonly ephemeral?: true
}

export const BuiltinTypes = {
  WorkflowStarted: { category: "lifecycle" },
  WorkflowCompleted: { category: "lifecycle", ends: "completed" },
  WorkflowFailed: { category: "lifecycle", ends: "failed" },
  WorkflowCancelled: { category: "lifecycle", ends: "cancelled" },
  WorkflowLLMCallStarted: { category: "llm" },
  WorkflowLLMCallChunk: { category: "llm", ephemeral: true },
  WorkflowLLMCallCompleted: { category: "llm" },
  WorkflowToolCallStarted: { category: "tool" },
  WorkflowToolCallCompleted: { category: "tool" },
  WorkflowBudgetWarning: { category: "budget" },
  WorkflowBudgetExceeded: { category: "budget" },
  WorkflowPaused: { category: "flow" },
  WorkflowResumed: { category: "flow" },
  WorkflowStepStarted: { category: "step" },
  WorkflowStepCompleted: { category: "step" }
} as const satisfies Record<string, TypeKind & { readonly category: Category }>

/** A built-in type name: what the typed publisher and client APIs know at compile time. */
export type EventType = keyof typeof BuiltinTypes
export const EventTypes = Object.keys(BuiltinTypes) as ReadonlyArray<EventType>

export type { PayloadOf } from "./payloads.ts"

/** A custom type's payload check: the first problem found (path into `data`, message), or undefined. */
export type PayloadCheck = (data: Record<string, unknown>) => { readonly path: ReadonlyArray<string>; readonly message: string } | undefined

/** A type defined in `EVENT_TYPES_FILE`. */
export interface CustomType extends TypeKind {
  /** The JSON Schema of `data`, as the file gave it (served by `GET /event-types`). */
  readonly payload: Record<string, unknown>
  readonly check: PayloadCheck
}

/** Names of custom types (SPEC §10.2). */
export const CUSTOM_TYPE_NAME = /^[A-Z][A-Za-z0-9]{2,63}$/

/**
 * How the append script stores a type (`append.lua`'s table and the Redis
 * registry key): d = durable, t = terminal (durable, ends the task), e = ephemeral.
 */
export const storageKindOf = (kind: TypeKind): "d" | "t" | "e" =>
  kind.ends !== undefined ? "t" : kind.ephemeral === true ? "e" : "d"

export const isBuiltinType = (name: string): name is EventType => Object.hasOwn(BuiltinTypes, name)

/** The built-in types and one set of custom types: everything a gateway or a publisher knows about types. */
export class EventRegistry {
  /** Every known type name: built-ins first, then custom ones. */
  readonly types: ReadonlyArray<string>
  /** Every category: built-ins first, then those custom types add. */
  readonly categories: ReadonlyArray<string>
  /** The custom types as the append script takes them, built once: name, storage kind, name, storage kind, … */
  readonly customKinds: ReadonlyArray<string>
  private readonly custom: ReadonlyMap<string, CustomType>

  /** A built-in name among `custom` is refused. */
  constructor(custom: ReadonlyMap<string, CustomType> = new Map()) {
    for (const name of custom.keys()) {
      if (isBuiltinType(name)) throw new Error(`${name} is a built-in event type and cannot be redefined`)
    }
    this.custom = custom
    this.types = [...EventTypes, ...custom.keys()]
    this.categories = [...new Set<string>([...Categories, ...[...custom.values()].map((type) => type.category)])]
    this.customKinds = [...custom].flatMap(([name, type]) => [name, storageKindOf(type)])
  }

  customType(name: string): CustomType | undefined {
    return this.custom.get(name)
  }

  /** The registry entry of a type, undefined for a name the registry does not know. */
  kindOf(name: string): TypeKind | undefined {
    return isBuiltinType(name) ? BuiltinTypes[name] : this.custom.get(name)
  }

  isKnown(name: string): boolean {
    return this.kindOf(name) !== undefined
  }

  endingOf(name: string): Ending | undefined {
    return this.kindOf(name)?.ends
  }

  isTerminal(name: string): boolean {
    return this.endingOf(name) !== undefined
  }

  isEphemeral(name: string): boolean {
    return this.kindOf(name)?.ephemeral === true
  }

  categoryOf(name: string): string | undefined {
    return this.kindOf(name)?.category
  }
}

/** The registry of code that knows only the built-in types (the typed clients, tests, the demo's chunks). */
export const builtinRegistry = new EventRegistry()
