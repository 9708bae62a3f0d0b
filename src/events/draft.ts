/**
 * Validation of an event a publisher wants to append (SPEC §3, §10.2): the
 * outer shape `{type, data, time?, idempotency_key?}`, a known type (built-in
 * or custom), and the payload schema of that type. Errors name the failing
 * field; `data` keeps extra fields exactly as sent.
 */
import { Result, Schema, SchemaIssue } from "effect"
import { Payloads } from "./payloads.ts"
import { type EventRegistry, type EventType, EventTypes, isBuiltinType } from "./registry.ts"

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

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/

/** An ISO-8601 time that names a real instant: `9999-99-99T99:99:99Z` has the shape but no date. */
export const isRealTime = (text: string): boolean => {
  const match = ISO_TIME.exec(text)
  if (match === null) return false
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number)
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
    date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second &&
    (match[8] === "Z" || (Number(match[9]) <= 23 && Number(match[10]) <= 59))
}

/**
 * A lone UTF-16 surrogate in `data` (`"\ud800"`): not a Unicode string, so
 * the log's JSON decoder (Redis's cjson) refuses it. JSON.stringify escapes
 * exactly these as `\udXXX` after an even run of backslashes.
 */
const LONE_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/

/** An event's `time`: a real ISO-8601 instant, wherever a publisher can send one. */
export const EventTime = Schema.String.check(
  Schema.makeFilter((text) => isRealTime(text) ? true : "expected a real ISO-8601 time like 2026-11-24T10:00:00.000Z")
)

const DraftShape = Schema.Struct({
  type: Schema.String,
  data: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  time: Schema.optionalKey(EventTime),
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

/**
 * The common draft, parsed JSON `{"type": "…", "data": {…}}` and nothing else, is already the
 * shape DraftShape decodes to: it skips the generic decode (a property test checks they agree).
 */
const plainDraft = (input: unknown): { type: string; data: Record<string, unknown> } | undefined => {
  if (typeof input !== "object" || input === null || Object.getPrototypeOf(input) !== Object.prototype) return undefined
  const { type, data } = input as { type?: unknown; data?: unknown }
  if (typeof type !== "string" || typeof data !== "object" || data === null) return undefined
  if (Object.getPrototypeOf(data) !== Object.prototype) return undefined
  const keys = Object.keys(input)
  return keys.length === 2 && Object.hasOwn(input, "type") && Object.hasOwn(input, "data") ? { type, data: data as Record<string, unknown> } : undefined
}

/**
 * Validate one draft against `registry` (the gateway's or the publisher's);
 * `prefix` locates it in the request (`""`, or `"[3]"` inside a batch).
 */
export const decodeDraft = (registry: EventRegistry, input: unknown, prefix = "", fast = true): Result.Result<EventDraft, InvalidEvent> => {
  const plain = fast ? plainDraft(input) : undefined
  const shape: Result.Result<typeof DraftShape.Type, Schema.SchemaError> = plain === undefined
    ? decodeShape(input, { onExcessProperty: "error" })
    : Result.succeed(plain)
  if (Result.isFailure(shape)) return Result.fail(invalid(prefix, shape.failure))
  const { type, data = {}, time, idempotency_key } = shape.success
  const at = (field: string) => [prefix, field].filter((part) => part !== "").join(".")
  if (isBuiltinType(type)) {
    const payload = payloadDecoders[type](data)
    if (Result.isFailure(payload)) return Result.fail(invalid(at("data"), payload.failure))
  } else {
    const custom = registry.customType(type)
    if (custom === undefined) {
      return Result.fail(new InvalidEvent({ field: at("type"), message: `unknown event type '${type.slice(0, 64)}'` }))
    }
    const issue = custom.check(data)
    if (issue !== undefined) {
      return Result.fail(new InvalidEvent({ field: [at("data"), ...issue.path].join("."), message: issue.message }))
    }
  }
  const dataJson = JSON.stringify(data)
  // A lone surrogate shows as a `\ud…` escape: the regular expression runs only on text that has one.
  if (dataJson.includes("\\ud") && LONE_SURROGATE.test(dataJson)) {
    return Result.fail(new InvalidEvent({ field: at("data"), message: "a string holds a lone UTF-16 surrogate (not valid Unicode)" }))
  }
  return Result.succeed({
    type,
    data,
    dataJson,
    ...(time === undefined ? {} : { time }),
    ...(idempotency_key === undefined ? {} : { idempotencyKey: idempotency_key })
  })
}
