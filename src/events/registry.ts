/**
 * The event registry (SPEC §3): every workflow event type, its categories,
 * whether it ends the task or is live-only, and the schema of its payload.
 * Everything else (validation, filters, the Lua script test, the typed client)
 * reads this one table.
 */
import { Schema } from "effect"

export const Categories = ["lifecycle", "llm", "tool", "budget", "flow", "step"] as const
export type Category = (typeof Categories)[number]

// Optional fields accept null too: publishers in other languages send `None`.
const opt = <S extends Schema.Top>(schema: S) => Schema.optionalKey(Schema.NullOr(schema))
const Text = Schema.String
const Amount = Schema.Finite
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Json = Schema.Unknown
const StepRef = Schema.Union([Schema.String, Schema.Finite])

interface TypeSpec {
  readonly category: Category
  readonly terminal?: true
  readonly ephemeral?: true
  readonly payload: Schema.Struct<Schema.Struct.Fields>
}

const spec = <const T extends TypeSpec>(t: T) => t

export const Registry = {
  WorkflowStarted: spec({
    category: "lifecycle",
    payload: Schema.Struct({ goal: opt(Text), max_iterations: opt(Count), budget_limit: opt(Amount) })
  }),
  WorkflowCompleted: spec({
    category: "lifecycle",
    terminal: true,
    payload: Schema.Struct({ final_response: opt(Json), total_cost: opt(Amount), iterations_completed: opt(Count) })
  }),
  WorkflowFailed: spec({
    category: "lifecycle",
    terminal: true,
    payload: Schema.Struct({ error: Text, error_type: opt(Text) })
  }),
  WorkflowCancelled: spec({
    category: "lifecycle",
    terminal: true,
    payload: Schema.Struct({ reason: opt(Text) })
  }),
  WorkflowLLMCallStarted: spec({
    category: "llm",
    payload: Schema.Struct({
      model: Text,
      call_id: opt(Text),
      estimated_cost: opt(Amount),
      iteration: opt(Count),
      message_count: opt(Count)
    })
  }),
  WorkflowLLMCallChunk: spec({
    category: "llm",
    ephemeral: true,
    payload: Schema.Struct({
      chunk: Text,
      chunk_index: Count,
      call_id: opt(Text),
      model: opt(Text),
      is_final: opt(Schema.Boolean),
      // Set by the gateway on the one chunk that stands for a call's chunks so far (SPEC §8.2).
      compacted: opt(Schema.Boolean)
    })
  }),
  WorkflowLLMCallCompleted: spec({
    category: "llm",
    payload: Schema.Struct({
      model: Text,
      call_id: opt(Text),
      cost: opt(Amount),
      total_cost: opt(Amount),
      usage: opt(Json),
      content: opt(Json)
    })
  }),
  WorkflowToolCallStarted: spec({
    category: "tool",
    payload: Schema.Struct({ tool_name: Text, tool_call_id: Text, arguments: opt(Json) })
  }),
  WorkflowToolCallCompleted: spec({
    category: "tool",
    payload: Schema.Struct({
      tool_name: Text,
      tool_call_id: Text,
      success: Schema.Boolean,
      result: opt(Json),
      execution_time_ms: opt(Amount)
    })
  }),
  WorkflowBudgetWarning: spec({
    category: "budget",
    payload: Schema.Struct({ cost: Amount, limit: Amount, usage_percentage: opt(Amount) })
  }),
  WorkflowBudgetExceeded: spec({
    category: "budget",
    payload: Schema.Struct({ cost: Amount, limit: Amount })
  }),
  WorkflowPaused: spec({ category: "flow", payload: Schema.Struct({ reason: opt(Text) }) }),
  WorkflowResumed: spec({ category: "flow", payload: Schema.Struct({ reason: opt(Text) }) }),
  WorkflowStepStarted: spec({ category: "step", payload: Schema.Struct({ step: StepRef, name: opt(Text) }) }),
  WorkflowStepCompleted: spec({
    category: "step",
    payload: Schema.Struct({ step: StepRef, name: opt(Text), duration_ms: opt(Amount) })
  })
} as const satisfies Record<string, TypeSpec>

export type EventType = keyof typeof Registry
export const EventTypes = Object.keys(Registry) as ReadonlyArray<EventType>

/** The payload type of each event, as a TypeScript union member (used by the typed client). */
export type PayloadOf<T extends EventType> = (typeof Registry)[T]["payload"]["Type"] & Record<string, unknown>

export const isEventType = (value: string): value is EventType => Object.hasOwn(Registry, value)

export const isTerminal = (type: EventType): boolean => "terminal" in Registry[type]
export const isEphemeral = (type: EventType): boolean => "ephemeral" in Registry[type]
export const categoryOf = (type: EventType): Category => Registry[type].category

export const TerminalTypes: ReadonlySet<EventType> = new Set(EventTypes.filter(isTerminal))
export const EphemeralTypes: ReadonlySet<EventType> = new Set(EventTypes.filter(isEphemeral))
