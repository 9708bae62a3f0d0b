/**
 * CloudEvents 1.0 to taskstream events (SPEC §10.1): the JSON event format
 * (structured and batch mode) and the HTTP binary mode's `ce-*` headers.
 *
 * - `type` names a taskstream type by its part after the last `.`
 *   (`ai.agentarea.workflow.WorkflowStarted` → `WorkflowStarted`);
 * - the task: the extension attributes `agentid` and `taskid`, else
 *   `subject` = `<agentId>/<taskId>`;
 * - `id` + `source` are the idempotency key (a repeat appends nothing);
 * - `time` → time, `data` → data (a JSON object; absent = `{}`).
 * Other extension attributes are accepted and ignored.
 */
import { Result, Schema, SchemaIssue } from "effect"
import { decodeDraft, EventTime, InvalidEvent } from "../events/draft.ts"
import type { EventRegistry } from "../events/registry.ts"
import { ID_PATTERN } from "../events/envelope.ts"
import { derivedKey, fieldAt, isJsonMediaType, type Published } from "./published.ts"

const NonEmpty = Schema.String.check(Schema.isMinLength(1))

/** The context attributes taskstream reads; any other extension passes unchecked. */
const Attributes = Schema.Struct({
  specversion: Schema.Literal("1.0"),
  id: NonEmpty,
  source: NonEmpty,
  type: NonEmpty,
  subject: Schema.optionalKey(Schema.String),
  time: Schema.optionalKey(EventTime),
  datacontenttype: Schema.optionalKey(Schema.String),
  agentid: Schema.optionalKey(Schema.String),
  taskid: Schema.optionalKey(Schema.String),
  data: Schema.optionalKey(Schema.Unknown),
  data_base64: Schema.optionalKey(Schema.Unknown)
})

const decodeAttributes = Schema.decodeUnknownResult(Attributes)
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const fail = (field: string, message: string): Result.Result<never, InvalidEvent> =>
  Result.fail(new InvalidEvent({ field, message }))

/** The task a CloudEvent names. */
const taskOf = (attributes: typeof Attributes.Type, prefix: string): Result.Result<Published["task"], InvalidEvent> => {
  const { agentid, subject, taskid } = attributes
  if (agentid !== undefined || taskid !== undefined) {
    if (agentid === undefined) return fail(fieldAt(prefix, "agentid"), "taskid is set but agentid is not")
    if (taskid === undefined) return fail(fieldAt(prefix, "taskid"), "agentid is set but taskid is not")
    if (!ID_PATTERN.test(agentid)) return fail(fieldAt(prefix, "agentid"), "agentid must be 1-128 characters of [A-Za-z0-9._:-]")
    if (!ID_PATTERN.test(taskid)) return fail(fieldAt(prefix, "taskid"), "taskid must be 1-128 characters of [A-Za-z0-9._:-]")
    return Result.succeed({ agentId: agentid, taskId: taskid })
  }
  if (subject === undefined) {
    return fail(fieldAt(prefix, "taskid"), "no task: set the extension attributes agentid and taskid, or subject to <agentId>/<taskId>")
  }
  const [agentId, taskId, ...rest] = subject.split("/")
  if (rest.length > 0 || taskId === undefined || !ID_PATTERN.test(agentId) || !ID_PATTERN.test(taskId)) {
    return fail(fieldAt(prefix, "subject"), "subject must be <agentId>/<taskId>, each 1-128 characters of [A-Za-z0-9._:-]")
  }
  return Result.succeed({ agentId, taskId })
}

/** One CloudEvent in the JSON event format, against `registry`; `prefix` locates it in a batch (`[3]`). */
export const decodeCloudEvent = (registry: EventRegistry, input: unknown, prefix = ""): Result.Result<Published, InvalidEvent> => {
  if (!isObject(input)) return fail(prefix === "" ? "body" : prefix, "a CloudEvent is a JSON object")
  const decoded = decodeAttributes(input)
  if (Result.isFailure(decoded)) {
    const [first] = formatIssue(decoded.failure.issue).issues
    const attribute = (first?.path ?? []).map(String)[0] ?? "body"
    return fail(fieldAt(prefix, attribute), first?.message ?? "invalid")
  }
  const attributes = decoded.success
  const task = taskOf(attributes, prefix)
  if (Result.isFailure(task)) return Result.fail(task.failure)
  if (attributes.data_base64 !== undefined) {
    return fail(fieldAt(prefix, "data_base64"), "binary data is not accepted: data must be a JSON object")
  }
  if (attributes.datacontenttype !== undefined && !isJsonMediaType(attributes.datacontenttype)) {
    return fail(fieldAt(prefix, "datacontenttype"), "data must be JSON (application/json)")
  }
  if (attributes.data !== undefined && !isObject(attributes.data)) return fail(fieldAt(prefix, "data"), "data must be a JSON object")
  if (attributes.time !== undefined && Number.isNaN(Date.parse(attributes.time))) {
    return fail(fieldAt(prefix, "time"), "time is not a valid date")
  }
  const type = attributes.type.slice(attributes.type.lastIndexOf(".") + 1)
  const draft = decodeDraft(registry, {
    type,
    data: attributes.data ?? {},
    ...(attributes.time === undefined ? {} : { time: attributes.time }),
    idempotency_key: derivedKey("ce", attributes.source, attributes.id)
  }, prefix)
  if (Result.isFailure(draft)) return Result.fail(draft.failure)
  return Result.succeed({ task: task.success, draft: draft.success })
}

/**
 * The HTTP binary mode: context attributes in `ce-*` headers, the body is
 * `data`. Returns the event in the JSON format, for `decodeCloudEvent`.
 */
export const fromBinary = (headers: Headers, data: unknown): Record<string, unknown> => {
  const event: Record<string, unknown> = {}
  headers.forEach((value, name) => {
    if (!name.toLowerCase().startsWith("ce-")) return
    let text = value
    try {
      // The binding percent-encodes characters outside printable ASCII.
      text = decodeURIComponent(value)
    } catch {
      // Not percent-encoded: keep it as sent.
    }
    event[name.slice(3).toLowerCase()] = text
  })
  if (data !== undefined) event.data = data
  return event
}
