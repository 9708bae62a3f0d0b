/**
 * The live channel's message format (written by `append.lua`): the envelope
 * JSON, with `prev` — the id of the stored event before this one — after the
 * id of a stored event. `prev` belongs to the message, not to the event: the
 * live feed hands it to listeners beside the event, so one that missed a
 * message (a reconnect, a failover) sees the gap and reads the log.
 */
import { type Envelope, type EventId, LogEvent, parseEventId } from "../events/envelope.ts"
import type { EventRegistry } from "../events/registry.ts"

export interface LiveMessage {
  readonly event: LogEvent
  /** The id of the stored event before `event`; undefined for an ephemeral event. */
  readonly prev: EventId | undefined
}

/**
 * Parse a live-channel message whose last field is always `data`, with the
 * gateway's `registry`. Undefined when the message is not in that format
 * (anyone with Redis access can PUBLISH).
 */
export const parseLiveMessage = (text: string, registry: EventRegistry): LiveMessage | undefined => {
  // Only the short head is parsed; the payload stays text until someone needs it as an object.
  const dataAt = text.indexOf(',"data":')
  if (dataAt < 0 || !text.endsWith("}")) return undefined
  let head: Omit<Envelope, "data"> & { readonly prev?: string }
  try {
    head = JSON.parse(`${text.slice(0, dataAt)}}`)
  } catch {
    return undefined
  }
  const id = head.id === undefined ? undefined : parseEventId(head.id)
  if (typeof head.type !== "string" || typeof head.agentId !== "string") return undefined
  // Only a stored event (with an id) may be of a type this gateway does not know.
  if (head.id === undefined ? registry.kindOf(head.type) === undefined : id === undefined) return undefined
  // Fields named one by one: no object spreads on the per-event path.
  const { type, agentId, taskId, time, prev } = head
  return {
    event: new LogEvent({ id: head.id, type, agentId, taskId, time, dataJson: text.slice(dataAt + 8, -1) }, registry),
    prev: prev === undefined ? undefined : parseEventId(prev)
  }
}
