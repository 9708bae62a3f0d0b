/**
 * The client side of the WebSocket protocol (SPEC §4.3): every frame a client
 * may send, as Schemas. A frame that does not decode is answered with an
 * `error` frame naming the field at fault (and echoing its `ref`/`sub` when
 * those could be read); the socket stays open.
 */
import { Result, Schema, SchemaIssue } from "effect"
import { CommandKind, REASON_MAX } from "../events/control.ts"
import { IDEMPOTENCY_KEY_MAX } from "../events/draft.ts"
import { parseEventId } from "../events/envelope.ts"
import type { ErrorCode } from "./errors.ts"
import { parseJson } from "./json.ts"
import { ID_PATTERN } from "./params.ts"

const Label = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))
const Id = Schema.String.check(Schema.isPattern(ID_PATTERN))
const EventIdText = Schema.String.check(Schema.makeFilter((text: string) => parseEventId(text) !== undefined || "an event id like 1732400000000-0"))
/** A comma list (as in the SSE `types` query) or an array of event types and categories. */
const Types = Schema.Union([Schema.String, Schema.Array(Schema.String)])

export const Subscribe = Schema.Struct({
  op: Schema.Literal("subscribe"),
  sub: Label,
  agentId: Id,
  taskId: Id,
  since: Schema.optionalKey(EventIdText),
  history: Schema.optionalKey(Schema.Boolean),
  types: Schema.optionalKey(Types)
})

const OnSubscription = <Op extends string>(op: Op) => Schema.Struct({ op: Schema.Literal(op), sub: Label })
export const Unsubscribe = OnSubscription("unsubscribe")
export const Pause = OnSubscription("pause")
export const Resume = OnSubscription("resume")

export const Command = Schema.Struct({
  op: Schema.Literal("command"),
  // The ref is also the command's idempotency key for the task: use a unique one (a UUID) per command.
  ref: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(IDEMPOTENCY_KEY_MAX)),
  agentId: Id,
  taskId: Id,
  command: CommandKind,
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(REASON_MAX)))
})

export const Ping = Schema.Struct({ op: Schema.Literal("ping"), ref: Schema.optionalKey(Label) })

/** Authenticate a socket opened without a token, or refresh the token of an open one. */
export const Auth = Schema.Struct({
  op: Schema.Literal("auth"),
  token: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(16384)),
  ref: Schema.optionalKey(Label)
})

const Frames = { auth: Auth, subscribe: Subscribe, unsubscribe: Unsubscribe, pause: Pause, resume: Resume, command: Command, ping: Ping }
export type ClientFrame = (typeof Frames)[keyof typeof Frames]["Type"]
type Op = keyof typeof Frames

/** What any frame may carry for correlation, read leniently so even a bad frame's error can echo them. */
const Envelope = Schema.Struct({
  op: Schema.optionalKey(Schema.Unknown),
  ref: Schema.optionalKey(Schema.String),
  sub: Schema.optionalKey(Schema.String)
})

export interface ProtocolError {
  readonly code: ErrorCode
  readonly message: string
  readonly ref?: string
  readonly sub?: string
}

const decodeEnvelope = Schema.decodeUnknownResult(Envelope)
const decoders = Object.fromEntries(
  Object.entries(Frames).map(([op, schema]) => [op, Schema.decodeUnknownResult(schema as Schema.Codec<ClientFrame>)])
) as Record<Op, (input: unknown, options: { onExcessProperty: "error" }) => Result.Result<ClientFrame, Schema.SchemaError>>
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()
const isOp = (op: unknown): op is Op => typeof op === "string" && Object.hasOwn(Frames, op)

const describe = (error: Schema.SchemaError): string => {
  const [first] = formatIssue(error.issue).issues
  const field = (first?.path ?? []).map(String).join(".")
  return `${field === "" ? "frame" : field}: ${first?.message ?? "invalid"}`
}

/** Decode one text frame from a client. */
export const decodeClientFrame = (text: string): Result.Result<ClientFrame, ProtocolError> => {
  const json = parseJson(text, "frame")
  if (Result.isFailure(json)) return Result.fail({ code: "invalid_json", message: json.failure.message })
  const envelope = decodeEnvelope(json.success)
  if (Result.isFailure(envelope)) return Result.fail({ code: "invalid_frame", message: `the frame must be a JSON object with an op; ${describe(envelope.failure)}` })
  const { op, ref, sub } = envelope.success
  const echo = { ...(ref === undefined ? {} : { ref }), ...(sub === undefined ? {} : { sub }) }
  if (!isOp(op)) {
    const shown = typeof op === "string" ? `'${op.slice(0, 32)}'` : op === undefined ? "missing" : "not a string"
    return Result.fail({ ...echo, code: "unknown_op", message: `op is ${shown}; expected one of ${Object.keys(Frames).join(", ")}` })
  }
  const frame = decoders[op](json.success, { onExcessProperty: "error" })
  return Result.isFailure(frame)
    ? Result.fail({ ...echo, code: "invalid_frame", message: describe(frame.failure) })
    : Result.succeed(frame.success)
}
