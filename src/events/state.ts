/**
 * A task folded into one object (SPEC §9.1): `(state, event) → state`, pure.
 * The `/state` route, the task list's status and the AG-UI state all use this
 * one fold. Ephemeral events (token chunks) change nothing.
 */
import type { EventDraft } from "./draft.ts"
import type { LogEvent } from "./envelope.ts"
import type { Ending, EventRegistry } from "./registry.ts"

export type TaskStatus = "running" | "paused" | Ending

export interface TaskState {
  readonly status: TaskStatus
  readonly goal: string | null
  /** The latest `WorkflowStepStarted`. */
  readonly step: { readonly step: string | number; readonly name: string | null } | null
  /** The latest total reported. */
  readonly cost: number | null
  readonly budget_limit: number | null
  readonly usage_percentage: number | null
  readonly llm_calls: number
  readonly tool_calls: number
  /** Stored events folded (the retained ones, when the log was trimmed before the fold began). */
  readonly events: number
  readonly last_event_id: string | null
  readonly updated_at: string | null
}

export const InitialState: TaskState = {
  status: "running",
  goal: null,
  step: null,
  cost: null,
  budget_limit: null,
  usage_percentage: null,
  llm_calls: 0,
  tool_calls: 0,
  events: 0,
  last_event_id: null,
  updated_at: null
}

/** How a terminal event ends its task: its registry entry's `ends`. */
export const endStatusOf = (event: { readonly ends: Ending | undefined }): Ending => event.ends ?? "completed"

/**
 * The status an event sets, or undefined when it leaves the status as it was:
 * a terminal event ends the task, `WorkflowPaused` pauses it, `WorkflowResumed`
 * resumes it. Also what the task index records after an append.
 */
export const statusSetBy = (event: { readonly type: string; readonly ends: Ending | undefined }): TaskStatus | undefined =>
  event.ends !== undefined
    ? event.ends
    : event.type === "WorkflowPaused"
    ? "paused"
    : event.type === "WorkflowResumed"
    ? "running"
    : undefined

/** What an append tells the task index: its last stored id and the status it set (SPEC §9.1), by `registry`'s endings. */
export const indexUpdateOf = (
  registry: EventRegistry,
  drafts: ReadonlyArray<EventDraft>,
  ids: ReadonlyArray<string | null>
): { readonly lastId: string | undefined; readonly status: TaskStatus | undefined } => {
  let lastId: string | undefined
  let status: TaskStatus | undefined
  for (let i = 0; i < drafts.length; i++) {
    const id = ids[i]
    if (id === null || id === "") continue
    lastId = id
    status = statusSetBy({ type: drafts[i].type, ends: registry.endingOf(drafts[i].type) }) ?? status
  }
  return { lastId, status }
}

/** The status the task index records after an append that set `set` (or nothing) on a task that was `current`. */
export const indexedStatus = (current: TaskStatus | undefined, set: TaskStatus | undefined): TaskStatus =>
  set ?? (current === "paused" ? "paused" : "running")

const numberOr = (value: unknown, fallback: number | null): number | null =>
  typeof value === "number" && Number.isFinite(value) ? value : fallback

const isEnded = (status: TaskStatus): boolean => status !== "running" && status !== "paused"

export const foldEvent = (state: TaskState, event: LogEvent): TaskState => {
  if (event.ephemeral || event.id === undefined) return state
  const data = event.data
  const set = statusSetBy(event)
  const next: { -readonly [K in keyof TaskState]: TaskState[K] } = {
    ...state,
    status: set === undefined || isEnded(state.status) ? state.status : set,
    events: state.events + 1,
    last_event_id: event.id,
    updated_at: event.time
  }
  switch (event.type) {
    case "WorkflowStarted":
      next.goal = typeof data.goal === "string" ? data.goal : state.goal
      next.budget_limit = numberOr(data.budget_limit, state.budget_limit)
      break
    case "WorkflowStepStarted":
      next.step = { step: data.step as string | number, name: typeof data.name === "string" ? data.name : null }
      break
    case "WorkflowLLMCallStarted":
      next.llm_calls = state.llm_calls + 1
      break
    case "WorkflowToolCallStarted":
      next.tool_calls = state.tool_calls + 1
      break
    case "WorkflowLLMCallCompleted":
    case "WorkflowCompleted":
      next.cost = numberOr(data.total_cost, state.cost)
      break
    case "WorkflowBudgetWarning":
    case "WorkflowBudgetExceeded": {
      const cost = numberOr(data.cost, null)
      const limit = numberOr(data.limit, null)
      next.cost = cost ?? state.cost
      // The budget events carry the limit too: a task started without `budget_limit` still shows it.
      next.budget_limit = state.budget_limit ?? limit
      next.usage_percentage = numberOr(
        data.usage_percentage,
        cost !== null && limit !== null && limit > 0 ? (cost / limit) * 100 : state.usage_percentage
      )
      break
    }
  }
  return next
}

export const foldEvents = (state: TaskState, events: Iterable<LogEvent>): TaskState => {
  let folded = state
  for (const event of events) folded = foldEvent(folded, event)
  return folded
}

/** One RFC 6902 operation; the state's keys always exist, so changes are `replace`s. */
export interface ReplaceOperation {
  readonly op: "replace"
  readonly path: string
  readonly value: unknown
}

/** The JSON Patch that turns `before` into `after` (empty when nothing changed). */
export const stateDelta = (before: TaskState, after: TaskState): Array<ReplaceOperation> => {
  const operations: Array<ReplaceOperation> = []
  for (const key of Object.keys(after) as Array<keyof TaskState>) {
    const a = before[key]
    const b = after[key]
    const same = typeof b === "object" && b !== null && typeof a === "object" && a !== null
      ? a.step === b.step && a.name === b.name
      : a === b
    if (!same) operations.push({ op: "replace", path: `/${key}`, value: b })
  }
  return operations
}
