/**
 * A message the broker bridge receives (SPEC §10.2b): CloudEvents JSON (as
 * `POST /cloudevents`, recognised by `specversion`) or the envelope
 * `{type, agentId, taskId, data, time?, idempotency_key?}`. Each becomes the
 * task it names and a validated draft with an idempotency key, so however
 * many gateways see the message the log holds it once: CloudEvents `id` +
 * `source`, else the message's `idempotency_key`, else `fallbackKey` (a hash
 * of the message text on pub/sub, the entry id on a stream).
 */
import { Result, Schema, SchemaIssue } from "effect"
import { decodeDraft, InvalidEvent } from "../events/draft.ts"
import type { EventRegistry } from "../events/registry.ts"
import { ID_PATTERN } from "../events/envelope.ts"
import { decodeCloudEvent } from "./cloudevents.ts"
import type { Published } from "./published.ts"

const Id = Schema.String.check(Schema.isPattern(ID_PATTERN))

/** The envelope's routing part; the rest is checked as a draft. */
const Route = Schema.Struct({ agentId: Id, taskId: Id })

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** Parse a message against the gateway's `registry`. */
export const decodeMessage = (registry: EventRegistry, text: string, fallbackKey: () => string): Result.Result<Published, InvalidEvent> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Result.fail(new InvalidEvent({ field: "body", message: `not JSON: ${(error as Error).message}` }))
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Result.fail(new InvalidEvent({ field: "body", message: "a message is a JSON object" }))
  }
  if ("specversion" in json) return decodeCloudEvent(registry, json)
  const { agentId, taskId, ...event } = json as Record<string, unknown>
  const route = Schema.decodeUnknownResult(Route)({ agentId, taskId })
  if (Result.isFailure(route)) {
    const [first] = formatIssue(route.failure.issue).issues
    return Result.fail(new InvalidEvent({ field: String(first?.path?.[0] ?? "taskId"), message: `${first?.message ?? "invalid"}: 1-128 characters of [A-Za-z0-9._:-]` }))
  }
  const draft = decodeDraft(registry, "idempotency_key" in event ? event : { ...event, idempotency_key: fallbackKey() })
  if (Result.isFailure(draft)) return Result.fail(draft.failure)
  return Result.succeed({ task: route.success, draft: draft.success })
}
