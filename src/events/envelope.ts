/**
 * The event envelope (SPEC §3) and the log id format `<ms>-<seq>`.
 *
 * A `LogEvent` is parsed once when it leaves the log and then shared by every
 * client: its encodings (SSE frames, WebSocket frames) are memoised on it, so
 * an event fanned out to thousands of clients is serialised once per format.
 * What its type means (terminal, ephemeral) comes from the registry of
 * whoever builds it: the log layer of a gateway, with that gateway's registry.
 */
import type { Ending, EventRegistry } from "./registry.ts"

export interface Envelope {
  /** Assigned by the log; absent on ephemeral events, which are never stored. */
  readonly id?: string
  readonly type: string
  readonly agentId: string
  readonly taskId: string
  readonly time: string
  readonly data: Record<string, unknown>
}

/** A position in a task's log, comparable without allocating. */
export interface EventId {
  readonly ms: number
  readonly seq: number
}

/** Agent and task ids (SPEC §3): safe in a URL path, a Redis key and the envelope JSON as they are. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

const EVENT_ID_PATTERN = /^(\d{1,15})-(\d{1,15})$/

export const parseEventId = (text: string): EventId | undefined => {
  const match = EVENT_ID_PATTERN.exec(text)
  return match === null ? undefined : { ms: Number(match[1]), seq: Number(match[2]) }
}

export const formatEventId = (id: EventId): string => `${id.ms}-${id.seq}`

export const compareIds = (a: EventId, b: EventId): number => a.ms - b.ms || a.seq - b.seq

export const ZeroId: EventId = { ms: 0, seq: 0 }

/**
 * A type name that is safe on every wire as it is (an SSE `event:` line, the
 * envelope JSON built by concatenation). Registry names always are; a stored
 * event of a type this gateway does not know keeps its name when it is
 * safe, else it travels as `UNKNOWN_TYPE`.
 */
const SAFE_TYPE = /^[A-Za-z0-9._:-]{1,128}$/
export const UNKNOWN_TYPE = "UnknownEvent"

export interface LogEventFields {
  readonly id: string | undefined
  readonly type: string
  readonly agentId: string
  readonly taskId: string
  readonly time: string
  /** The payload as compact JSON text (one line). */
  readonly dataJson: string
}

export class LogEvent implements EventId {
  readonly id: string | undefined
  /**
   * The event's type. A stored event of a type the registry does not know
   * (removed from EVENT_TYPES_FILE, or written by hand) passes through as an
   * opaque durable event: no category, not terminal, delivered to streams
   * without a `types` filter.
   */
  readonly type: string
  readonly agentId: string
  readonly taskId: string
  readonly time: string
  readonly dataJson: string
  readonly ms: number
  readonly seq: number
  /** How this event ends its task; undefined when it does not. */
  readonly ends: Ending | undefined
  readonly terminal: boolean
  readonly ephemeral: boolean
  private parsedData: Record<string, unknown> | undefined
  private envelopeText: string | undefined
  /** Wire encodings by key, made on first use (most events are encoded once, many not at all). */
  private encodings: Map<string, Uint8Array> | undefined

  constructor(fields: LogEventFields, registry: EventRegistry, data?: Record<string, unknown>) {
    this.id = fields.id
    const kind = registry.kindOf(fields.type)
    this.type = kind !== undefined || SAFE_TYPE.test(fields.type) ? fields.type : UNKNOWN_TYPE
    this.agentId = fields.agentId
    this.taskId = fields.taskId
    this.time = fields.time
    this.dataJson = fields.dataJson
    const id = fields.id === undefined ? undefined : parseEventId(fields.id)
    this.ms = id?.ms ?? 0
    this.seq = id?.seq ?? 0
    this.ends = kind?.ends
    this.terminal = this.ends !== undefined
    this.ephemeral = kind?.ephemeral === true
    this.parsedData = data
  }

  get data(): Record<string, unknown> {
    return (this.parsedData ??= JSON.parse(this.dataJson) as Record<string, unknown>)
  }

  get envelope(): Envelope {
    const { type, agentId, taskId, time, data } = this
    return this.id === undefined ? { type, agentId, taskId, time, data } : { id: this.id, type, agentId, taskId, time, data }
  }

  /**
   * The envelope as compact JSON, built once. Every field but `data` is
   * validated to characters that need no escaping, so concatenation is exact.
   */
  get json(): string {
    return (this.envelopeText ??= (this.id === undefined ? "{" : `{"id":"${this.id}",`) +
      `"type":"${this.type}","agentId":"${this.agentId}","taskId":"${this.taskId}","time":"${this.time}","data":${this.dataJson}}`)
  }

  /** Memoise one wire encoding of this event under `key`. */
  encoded(key: string, encode: (event: LogEvent) => Uint8Array): Uint8Array {
    let bytes = this.encodings?.get(key)
    if (bytes === undefined) {
      bytes = encode(this)
      ;(this.encodings ??= new Map()).set(key, bytes)
    }
    return bytes
  }

  static fromDraft(
    registry: EventRegistry,
    id: string | undefined,
    task: { agentId: string; taskId: string },
    type: string,
    time: string,
    data: Record<string, unknown>,
    dataJson = JSON.stringify(data)
  ): LogEvent {
    return new LogEvent({ id, type, agentId: task.agentId, taskId: task.taskId, time, dataJson }, registry, data)
  }
}
