/**
 * Validation of an event a publisher wants to append (SPEC §3, §10.2): the
 * outer shape `{type, data, time?, idempotency_key?}`, a known type (built-in
 * or custom), and the payload schema of that type. Errors name the failing
 * field; `data` keeps extra fields exactly as sent.
 */
import { Result, Schema, SchemaIssue } from "effect"
import { Payloads } from "./payloads.ts"
import { customType, type EventType, EventTypes, isBuiltinType } from "./registry.ts"

export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  field: Schema.String,
  message: Schema.String
}) {}

export interface EventDraft {
  /** A type the registry knows: built-in or custom. */
  readonly type: string
  readonly data: Record<string, unknown>
  /** `data` as compact JSON, serialised once here for the size check, the log and the wire. */
  readonly dataJson: string
  /** ISO-8601 time the event happened; the log uses its own clock when absent. */
  readonly time?: string
  readonly idempotencyKey?: string
}

export const IDEMPOTENCY_KEY_MAX = 200

const utf8 = new TextEncoder()

/** The size of a draft's `data` in bytes, as MAX_EVENT_BYTES counts it. */
export const dataSize = (draft: EventDraft): number => utf8.encode(draft.dataJson).byteLength
export const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

const DraftShape = Schema.Struct({
  type: Schema.String,
  data: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  time: Schema.optionalKey(Schema.String.check(Schema.isPattern(ISO_TIME))),
  idempotency_key: Schema.optionalKey(
    Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(IDEMPOTENCY_KEY_MAX))
  )
})

const decodeShape = Schema.decodeUnknownResult(DraftShape)
const payloadDecoders = Object.fromEntries(
  EventTypes.map((type) => [type, Schema.decodeUnknownResult(Payloads[type])])
) as Record<EventType, ReturnType<typeof Schema.decodeUnknownResult>>

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const invalid = (prefix: string, error: Schema.SchemaError): InvalidEvent => {
  const [first] = formatIssue(error.issue).issues
  const path = (first?.path ?? []).map(String)
  const field = [prefix, ...path].filter((part) => part !== "").join(".")
  return new InvalidEvent({ field: field === "" ? "body" : field, message: first?.message ?? "invalid event" })
}

/** Validate one draft; `prefix` locates it in the request (`""`, or `"[3]"` inside a batch). */
export const decodeDraft = (input: unknown, prefix = ""): Result.Result<EventDraft, InvalidEvent> => {
  const shape = decodeShape(input, { onExcessProperty: "error" })
  if (Result.isFailure(shape)) return Result.fail(invalid(prefix, shape.failure))
  const { type, data = {}, time, idempotency_key } = shape.success
  const at = (field: string) => [prefix, field].filter((part) => part !== "").join(".")
  if (isBuiltinType(type)) {
    const payload = payloadDecoders[type](data)
    if (Result.isFailure(payload)) return Result.fail(invalid(at("data"), payload.failure))
  } else {
    const custom = customType(type)
    if (custom === undefined) {
      return Result.fail(new InvalidEvent({ field: at("type"), message: `unknown event type '${type.slice(0, 64)}'` }))
    }
    const issue = custom.check(data)
    if (issue !== undefined) {
      return Result.fail(new InvalidEvent({ field: [at("data"), ...issue.path].join("."), message: issue.message }))
    }
  }
  return Result.succeed({
    type,
    data,
    dataJson: JSON.stringify(data),
    ...(time === undefined ? {} : { time }),
    ...(idempotency_key === undefined ? {} : { idempotencyKey: idempotency_key })
  })
}
