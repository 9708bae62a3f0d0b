/**
 * Server-Sent Events on the wire (SPEC §4.1): the frames, and one connection
 * as a web-standard ReadableStream. Frames of an event are encoded once and
 * shared by every connection; a connection's queued frames go out in one
 * write per event-loop turn. The outbound buffer is bounded: a client that
 * stops reading is cut off instead of growing memory, and resumes from the log.
 */
import type { LogEvent } from "../events/envelope.ts"
import type { EndReason, Sink } from "../stream/TaskStream.ts"
import type { CloseReason, StreamConnection } from "./connections.ts"
import { countDelivered } from "./delivery.ts"
import { joinChunks, type Outbox, roundTime, scheduleFlush, whenDrained } from "./outbox.ts"

export type SseFormat = "payload" | "envelope"

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no"
} as const

const encoder = new TextEncoder()

const frame = (id: string | undefined, event: string, data: string): string =>
  `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`

/**
 * Chunks sized in bytes with a high-water mark of 1, so `1 - desiredSize` is
 * the backlog in bytes (a large mark would make Bun reserve memory for it on
 * every idle connection).
 */
const BACKLOG_IN_BYTES: QueuingStrategy<Uint8Array> = { highWaterMark: 1, size: (chunk) => chunk?.byteLength ?? 0 }

const TOKEN_EXPIRED = encoder.encode(frame(undefined, "token_expired", JSON.stringify({ reason: "token_expired" })))

const encodePayload = (event: LogEvent) => encoder.encode(frame(event.id, event.type, event.dataJson))
const encodeEnvelope = (event: LogEvent) => encoder.encode(frame(event.id, event.type, event.json))

export interface SseOptions {
  readonly format: SseFormat
  readonly subject: string
  /** When the bearer's token expires (ms); the stream is closed then. */
  readonly expiresAt: number
  readonly retryMs: number
  /** Bytes the connection may hold unsent before it is closed as a slow consumer. */
  readonly bufferBytes: number
  readonly onClose: (reason: CloseReason) => void
}

export class SseConnection implements Sink, Outbox, StreamConnection {
  readonly transport = "sse"
  readonly body: ReadableStream<Uint8Array>
  queued = false
  /** When the connection last wrote (heartbeats fill silences). */
  lastWrite = Date.now()
  private controller!: ReadableStreamDefaultController<Uint8Array>
  private pending: Array<Uint8Array> = []
  private pendingBytes = 0
  private pendingEvents = 0
  private closed = false
  private readonly encodingKey: string
  private readonly encode: (event: LogEvent) => Uint8Array

  constructor(private readonly options: SseOptions) {
    this.encodingKey = `sse:${options.format}`
    this.encode = options.format === "payload" ? encodePayload : encodeEnvelope
    // The connection is its own underlying source: no per-connection closures.
    this.body = new ReadableStream<Uint8Array>(this, BACKLOG_IN_BYTES)
  }

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller
    controller.enqueue(encoder.encode(`retry: ${this.options.retryMs}\n\n`))
  }

  cancel(): void {
    this.finish("client_gone")
  }

  get subject(): string {
    return this.options.subject
  }

  get expiresAt(): number {
    return this.options.expiresAt
  }

  event(event: LogEvent): void {
    this.pendingEvents++
    this.push(event.encoded(this.encodingKey, this.encode))
  }

  resync(oldest: string): void {
    this.push(encoder.encode(frame(undefined, "resync", JSON.stringify({ reason: "history_trimmed", oldest }))))
  }

  get capacity(): number {
    return this.options.bufferBytes
  }

  /** What is queued and not yet taken by the runtime: frames of this turn plus the stream's backlog. */
  backlog(): number {
    return this.pendingBytes + (this.closed ? 0 : 1 - (this.controller.desiredSize ?? 1))
  }

  whenUnder(mark: number, ready: () => void): () => void {
    return whenDrained(() => this.backlog(), mark, ready)
  }

  heartbeat(): void {
    this.push(encoder.encode(frame(undefined, "heartbeat", JSON.stringify({ time: new Date().toISOString() }))))
  }

  end(reason: EndReason): void {
    this.close(reason)
  }

  /** Send what is queued, then end the response. */
  close(reason: CloseReason): void {
    if (this.closed) return
    // SPEC §8.3: the client learns why, and reconnects with a fresh token rather than the same one.
    if (reason === "token_expired") this.push(TOKEN_EXPIRED)
    this.flush()
    this.finish(reason)
    try {
      this.controller.close()
    } catch {
      // already closed by the runtime
    }
  }

  flush(): void {
    if (this.closed || this.pending.length === 0) return
    const chunk = joinChunks(this.pending)
    this.pending = []
    this.pendingBytes = 0
    if (this.pendingEvents > 0) {
      countDelivered("sse", this.pendingEvents)
      this.pendingEvents = 0
    }
    this.lastWrite = roundTime
    this.controller.enqueue(chunk)
    if (1 - (this.controller.desiredSize ?? 0) > this.options.bufferBytes) {
      this.finish("slow_consumer")
      this.controller.error(new Error("slow consumer"))
    }
  }

  private push(bytes: Uint8Array): void {
    if (this.closed) return
    this.pending.push(bytes)
    this.pendingBytes += bytes.byteLength
    scheduleFlush(this)
  }

  private finish(reason: CloseReason): void {
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.pendingBytes = 0
    this.options.onClose(reason)
  }
}
