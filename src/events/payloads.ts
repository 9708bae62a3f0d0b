/**
 * The payload schemas of the built-in event types (SPEC §3): required fields,
 * optional ones (null accepted, as publishers in other languages send
 * `None`), extra fields kept as sent. The same definitions validate a publish
 * and produce the JSON Schema that `GET /event-types` serves.
 */
import { Schema } from "effect"
import type { EventType } from "./registry.ts"

const opt = <S extends Schema.Top>(schema: S) => Schema.optionalKey(Schema.NullOr(schema))
const Text = Schema.String
const Amount = Schema.Finite
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Json = Schema.Unknown
const StepRef = Schema.Union([Schema.String, Schema.Finite])
const Reason = Schema.Struct({ reason: opt(Text) })

export const Payloads = {
  WorkflowStarted: Schema.Struct({ goal: opt(Text), max_iterations: opt(Count), budget_limit: opt(Amount) }),
  WorkflowCompleted: Schema.Struct({ final_response: opt(Json), total_cost: opt(Amount), iterations_completed: opt(Count) }),
  WorkflowFailed: Schema.Struct({ error: Text, error_type: opt(Text) }),
  WorkflowCancelled: Reason,
  WorkflowLLMCallStarted: Schema.Struct({
    model: Text,
    call_id: opt(Text),
    estimated_cost: opt(Amount),
    iteration: opt(Count),
    message_count: opt(Count)
  }),
  WorkflowLLMCallChunk: Schema.Struct({
    chunk: Text,
    chunk_index: Count,
    call_id: opt(Text),
    model: opt(Text),
    is_final: opt(Schema.Boolean),
    // Set by the gateway on the one chunk that stands for a call's chunks so far (SPEC §8.2).
    compacted: opt(Schema.Boolean)
  }),
  WorkflowLLMCallCompleted: Schema.Struct({
    model: Text,
    call_id: opt(Text),
    cost: opt(Amount),
    total_cost: opt(Amount),
    usage: opt(Json),
    content: opt(Json)
  }),
  WorkflowToolCallStarted: Schema.Struct({ tool_name: Text, tool_call_id: Text, arguments: opt(Json) }),
  WorkflowToolCallCompleted: Schema.Struct({
    tool_name: Text,
    tool_call_id: Text,
    success: Schema.Boolean,
    result: opt(Json),
    execution_time_ms: opt(Amount)
  }),
  WorkflowBudgetWarning: Schema.Struct({ cost: Amount, limit: Amount, usage_percentage: opt(Amount) }),
  WorkflowBudgetExceeded: Schema.Struct({ cost: Amount, limit: Amount }),
  WorkflowPaused: Reason,
  WorkflowResumed: Reason,
  WorkflowStepStarted: Schema.Struct({ step: StepRef, name: opt(Text) }),
  WorkflowStepCompleted: Schema.Struct({ step: StepRef, name: opt(Text), duration_ms: opt(Amount) })
} as const satisfies { readonly [T in EventType]: Schema.Struct<Schema.Struct.Fields> }

/** The payload type of each built-in event, as a TypeScript type (used by the typed publisher and client). */
export type PayloadOf<T extends EventType> = (typeof Payloads)[T]["Type"] & Record<string, unknown>

/**
 * The JSON Schema (draft 2020-12) of a built-in type's payload, generated
 * from its Schema. Extra fields are allowed, as the gateway keeps them.
 */
export const payloadJsonSchema = (type: EventType): Record<string, unknown> => {
  const { schema, definitions } = Schema.toJsonSchemaDocument(Payloads[type])
  const { additionalProperties: _, ...open } = schema as Record<string, unknown>
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    ...open,
    ...(Object.keys(definitions).length === 0 ? {} : { $defs: definitions })
  }
}
