/**
 * Server-Sent Events on the wire (SPEC §4.1, §9): one connection's frames
 * into the runtime's response body (`sseBody.ts`), whatever the encoding. What the frames say is
 * the connection's codec (taskstream events, AG-UI, the AI SDK's UI message
 * stream — `codecs/`); this file only moves bytes. A connection's queued
 * frames go out in one write per event-loop turn. The outbound buffer is
 * bounded: a client that stops reading is cut off instead of growing memory,
 * and resumes from the log.
 */
import type { LogEvent } from "../events/envelope.ts"
import type { EndReason, Sink } from "../stream/TaskStream.ts"
import type { CloseReason, StreamConnection } from "./connections.ts"
import type { Outbox, Writes } from "./outbox.ts"
import { type SseBody, type SseOutput, type SseSource, webSseBody } from "./sseBody.ts"

/**
 * One wire encoding of what the pipeline delivers to one SSE response: a pure
 * function of (event, the stream's own state) → frames. A stateless codec may
 * return bytes memoised on the event, shared by every connection.
 */
export interface SseCodec {
  /** Frames sent right after `retry:`, before any event. */
  open(): string
  /** The frames an event becomes ('' for none). */
  event(event: LogEvent): Uint8Array | string
  /** The resume point is older than the retained log: what follows starts at `oldest`. */
  resync(oldest: string): string
  /** Fills a silence of HEARTBEAT_MS. */
  heartbeat(): string
  /**
   * The last frames: when the pipeline ends the task's stream, or when the
   * server cuts a stream it can still write to (`token_expired`, `shutdown`).
   */
  end(reason: CloseReason): string
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no"
} as const

const encoder = new TextEncoder()

export interface SseOptions {
  readonly codec: SseCodec
  readonly subject: string
  /** When the bearer's token expires (ms); the stream is closed then. */
  readonly expiresAt: number
  readonly retryMs: number
  /** Bytes the connection may hold unsent before it is closed as a slow consumer. */
  readonly bufferBytes: number
  /** The gateway's coalesced writes. */
  readonly writes: Writes
  /** The runtime's response body (web streams, or Bun's direct streams). */
  readonly body?: SseBody
  /** Told when the connection closes (its place among the gateway's connections). */
  readonly owner: SseOwner
}

export interface SseOwner {
  closed(reason: CloseReason, connection: SseConnection): void
}

/** What an idle connection queues: nothing, without an empty array of its own (frozen: never pushed to). */
const NOTHING: Array<Uint8Array> = Object.freeze([]) as unknown as Array<Uint8Array>

/**
 * The options are copied into the connection, not kept: every small object an open connection
 * holds pins a slot among the garbage of its opening, which costs about 2.5 times its size in RSS
 * (docs/performance.md, "Issue 17, part 6").
 */
export class SseConnection implements Sink, Outbox, StreamConnection, SseSource {
  readonly body: ReadableStream<Uint8Array>
  queued = false
  /** When the connection last wrote (heartbeats fill silences). */
  lastWrite = Date.now()
  /** What feeds the connection (its subscription): closed with it. */
  feed: { close(): void } | undefined
  readonly subject: string
  readonly expiresAt: number
  /** Bytes the connection may hold unsent before it is closed as a slow consumer. */
  readonly capacity: number
  private readonly codec: SseCodec
  private readonly writes: Writes
  private readonly owner: SseOwner
  /** Set once the runtime starts reading the body: frames queued before wait for it. */
  private output: SseOutput | undefined
  private pending: Array<Uint8Array>
  private pendingBytes: number
  private pendingEvents = 0
  /** No frame is accepted any more (the connection was closed or cut off). */
  private closed = false
  /** Closed before the body opened: end it once what is queued is written. */
  private endOnOpen = false

  constructor(options: SseOptions) {
    this.subject = options.subject
    this.expiresAt = options.expiresAt
    this.capacity = options.bufferBytes
    this.codec = options.codec
    this.writes = options.writes
    this.owner = options.owner
    const first = encoder.encode(`retry: ${options.retryMs}\n\n${options.codec.open()}`)
    this.pending = [first]
    this.pendingBytes = first.byteLength
    this.body = (options.body ?? webSseBody)(this)
  }

  get transport(): "sse" {
    return "sse"
  }

  /** No frame is accepted any more. */
  get isClosed(): boolean {
    return this.closed
  }

  open(output: SseOutput): void {
    this.output = output
    this.flush()
    if (this.endOnOpen) output.end()
  }

  cancel(): void {
    this.output = undefined
    this.finish("client_gone")
  }

  event(event: LogEvent): void {
    const frames = this.codec.event(event)
    if (frames.length === 0) return
    this.pendingEvents++
    this.push(frames)
  }

  resync(oldest: string): void {
    this.push(this.codec.resync(oldest))
  }

  /** What is queued and not yet sent: frames of this turn plus what the runtime still holds. */
  backlog(): number {
    return this.closed ? 0 : this.pendingBytes + (this.output?.backlog() ?? 0)
  }

  whenUnder(mark: number, ready: () => void): () => void {
    return this.writes.whenDrained(() => this.backlog(), mark, ready)
  }

  heartbeat(): void {
    this.push(this.codec.heartbeat())
  }

  end(reason: EndReason): void {
    this.push(this.codec.end(reason))
    this.close(reason)
  }

  /** Send what is queued, then end the response. */
  close(reason: CloseReason): void {
    if (this.closed) return
    // SPEC §8.3: the client learns why (the codec's last frames), and reconnects with a fresh token rather than the same one.
    if (reason === "token_expired" || reason === "shutdown") this.push(this.codec.end(reason))
    try {
      this.flush()
    } catch {
      // The runtime's stream is past writing to (see Writes): closed as write_failed instead.
      return this.failed()
    }
    this.finish(reason)
    if (this.output !== undefined) this.output.end()
    else this.endOnOpen = true
  }

  flush(): void {
    const output = this.output
    if (output === undefined || this.pending.length === 0) return
    const chunk = this.writes.join(this.pending)
    this.pending = NOTHING
    this.pendingBytes = 0
    if (this.pendingEvents > 0) {
      this.writes.countDelivered("sse", this.pendingEvents)
      this.pendingEvents = 0
    }
    this.lastWrite = this.writes.roundTime
    output.write(chunk)
    if (output.backlog() > this.capacity) {
      this.output = undefined
      this.finish("slow_consumer")
      output.abort()
    }
  }

  /** Its write threw: closed for good (`write_failed`), the response cut (the client resumes from its last id). */
  failed(): void {
    const output = this.output
    this.output = undefined
    try {
      this.finish("write_failed")
    } finally {
      output?.abort()
    }
  }

  private push(frames: Uint8Array | string): void {
    if (this.closed || frames.length === 0) return
    const bytes = typeof frames === "string" ? encoder.encode(frames) : frames
    if (this.pending === NOTHING) this.pending = [bytes]
    else this.pending.push(bytes)
    this.pendingBytes += bytes.byteLength
    this.writes.schedule(this)
  }

  /** No more frames; what is still queued goes out only when the connection closes in order. */
  private finish(reason: CloseReason): void {
    if (this.closed) return
    this.closed = true
    if (reason === "client_gone" || reason === "slow_consumer") {
      this.pending = NOTHING
      this.pendingBytes = 0
    }
    this.owner.closed(reason, this)
    this.feed?.close()
  }
}
