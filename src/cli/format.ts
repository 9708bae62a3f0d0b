/**
 * One terminal line per event for `taskstream-tail`: time, category
 * (coloured), type, key fields. Events of custom types (EVENT_TYPES_FILE)
 * print their payload, under the category `custom`.
 */
import { CategoryOf, type Category, type TaskEvent } from "../client/index.ts"

const Colours: Record<Category, number> = { lifecycle: 35, llm: 95, tool: 36, budget: 33, flow: 90, step: 32 }

const paint = (colour: boolean, code: number, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text)

const money = (amount: number | null | undefined) => (amount == null ? "" : `$${amount.toFixed(4)}`)

const short = (value: unknown, max = 100) => {
  const text = JSON.stringify(value) ?? "null"
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

const fields = (pairs: Array<[string, unknown]>) =>
  pairs.filter(([, value]) => value !== undefined && value !== null && value !== "").map(([name, value]) => `${name}=${value}`).join(" ")

const isBuiltin = (event: TaskEvent): boolean => Object.hasOwn(CategoryOf, event.type)

/** What the line of an event adds: a completion's stored content when its text was not streamed here. */
export interface LineExtras {
  readonly content?: unknown
}

export const summary = (event: TaskEvent, extras: LineExtras = {}): string => {
  if (!isBuiltin(event)) return short(event.data, 120)
  switch (event.type) {
    case "WorkflowStarted":
      return fields([["goal", event.data.goal && short(event.data.goal)], ["budget", money(event.data.budget_limit)]])
    case "WorkflowCompleted":
      return fields([["total_cost", money(event.data.total_cost)], ["iterations", event.data.iterations_completed]])
    case "WorkflowFailed":
      return fields([["error", short(event.data.error)], ["type", event.data.error_type]])
    case "WorkflowCancelled":
    case "WorkflowPaused":
    case "WorkflowResumed":
      return fields([["reason", event.data.reason && short(event.data.reason)]])
    case "WorkflowLLMCallStarted":
      return fields([["model", event.data.model], ["estimated_cost", money(event.data.estimated_cost)]])
    case "WorkflowLLMCallChunk":
      // A compacted chunk is the call's whole text so far (SPEC §8.2): it replaces what came before.
      return event.data.compacted === true ? `so far ${short(event.data.chunk, 2000)}` : short(event.data.chunk)
    case "WorkflowLLMCallCompleted":
      return fields([
        ["model", event.data.model],
        ["cost", money(event.data.cost)],
        ["total_cost", money(event.data.total_cost)],
        ["content", extras.content === undefined || extras.content === null ? undefined : short(extras.content, 2000)]
      ])
    case "WorkflowToolCallStarted":
      return fields([["tool", event.data.tool_name], ["args", short(event.data.arguments ?? {}, 80)]])
    case "WorkflowToolCallCompleted":
      return fields([
        ["tool", event.data.tool_name],
        ["success", event.data.success],
        ["ms", event.data.execution_time_ms],
        ["result", short(event.data.result ?? null, 80)]
      ])
    case "WorkflowBudgetWarning":
      return fields([["cost", money(event.data.cost)], ["limit", money(event.data.limit)], ["usage", event.data.usage_percentage == null ? undefined : `${event.data.usage_percentage}%`]])
    case "WorkflowBudgetExceeded":
      return fields([["cost", money(event.data.cost)], ["limit", money(event.data.limit)]])
    case "WorkflowStepStarted":
    case "WorkflowStepCompleted":
      return fields([["step", event.data.step], ["name", event.data.name && short(event.data.name)]])
  }
}

export const formatLine = (event: TaskEvent, colour: boolean, extras: LineExtras = {}): string => {
  // The typed client knows the built-in types; a custom one arrives as any other event.
  const category: string = isBuiltin(event) ? CategoryOf[event.type] : "custom"
  const failed = event.type === "WorkflowFailed" || (event.type === "WorkflowToolCallCompleted" && !event.data.success)
  return [
    paint(colour, 2, event.time.slice(11, 23)),
    paint(colour, failed ? 31 : Colours[category as Category] ?? 37, category.padEnd(9)),
    paint(colour, 1, event.type.padEnd(26)),
    summary(event, extras)
  ].join(" ")
}
