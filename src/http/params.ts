/**
 * Parsing of path and query parameters shared by the routes (SPEC §4.1):
 * ids, event ids, booleans, the `types` filter. Each returns a value or an
 * ApiError naming the parameter.
 */
import { type EventId, ID_PATTERN, parseEventId } from "../events/envelope.ts"
import { parseTypeFilter, type TypeFilter } from "../events/filter.ts"
import type { EventRegistry } from "../events/registry.ts"
import { type ApiError, apiError } from "./errors.ts"

export { ID_PATTERN }

export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: ApiError }

const ok = <A>(value: A): Parsed<A> => ({ ok: true, value })
const fail = <A>(error: ApiError): Parsed<A> => ({ ok: false, error })

export interface TaskPath {
  readonly agentId: string
  readonly taskId: string
}

export const parseTaskPath = (agentId: string | undefined, taskId: string | undefined): Parsed<TaskPath> => {
  if (agentId === undefined || !ID_PATTERN.test(agentId)) {
    return fail(apiError("invalid_id", "agentId must be 1-128 characters of [A-Za-z0-9._:-]", "agentId"))
  }
  if (taskId === undefined || !ID_PATTERN.test(taskId)) {
    return fail(apiError("invalid_id", "taskId must be 1-128 characters of [A-Za-z0-9._:-]", "taskId"))
  }
  return ok({ agentId, taskId })
}

export const parseOptionalEventId = (text: string | undefined, field: string): Parsed<EventId | undefined> => {
  if (text === undefined || text === "") return ok(undefined)
  const id = parseEventId(text.trim())
  return id === undefined ? fail(apiError("invalid_query", `${field} must be an event id like 1732400000000-0`, field)) : ok(id)
}

export const parseBoolean = (text: string | undefined, field: string, fallback: boolean): Parsed<boolean> => {
  if (text === undefined || text === "") return ok(fallback)
  if (text === "true" || text === "1") return ok(true)
  if (text === "false" || text === "0") return ok(false)
  return fail(apiError("invalid_query", `${field} must be true or false`, field))
}

export const parseTypes = (text: string | undefined, registry: EventRegistry): Parsed<TypeFilter> => {
  const parsed = parseTypeFilter(registry, text)
  return "error" in parsed ? fail(apiError("invalid_query", parsed.error, "types")) : ok(parsed.filter)
}

export const parseLimit = (text: string | undefined, field: string, fallback: number, max: number): Parsed<number> => {
  if (text === undefined || text === "") return ok(fallback)
  const value = Number(text)
  return Number.isInteger(value) && value >= 1 && value <= max
    ? ok(value)
    : fail(apiError("invalid_query", `${field} must be an integer from 1 to ${max}`, field))
}

export const parseChoice = <const C extends string>(
  text: string | undefined,
  field: string,
  choices: ReadonlyArray<C>
): Parsed<C> => {
  if (text === undefined || text === "") return ok(choices[0])
  return (choices as ReadonlyArray<string>).includes(text)
    ? ok(text as C)
    : fail(apiError("invalid_query", `${field} must be one of ${choices.join(", ")}`, field))
}

type Values<R extends Record<string, Parsed<unknown>>> = { readonly [K in keyof R]: R[K] extends Parsed<infer A> ? A : never }

/** All parameters at once: their values, or the first error in the order given. */
export const parseAll = <R extends Record<string, Parsed<unknown>>>(fields: R): Parsed<Values<R>> => {
  const values: Record<string, unknown> = {}
  for (const [name, parsed] of Object.entries(fields)) {
    if (!parsed.ok) return fail(parsed.error)
    values[name] = parsed.value
  }
  return ok(values as Values<R>)
}
