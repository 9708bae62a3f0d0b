/**
 * WebSocket on the wire (SPEC §4.3): one connection's outbound frames, sent
 * together once per event-loop turn, with a bounded buffer. Runtime-neutral:
 * the runtime entry supplies a `WireSocket` for its socket type (Bun corks
 * the frames of one turn into one write).
 *
 * An event frame is a short per-subscription prefix joined to the event's
 * envelope JSON, which the event builds once for every client; the joined
 * frame is built once per prefix (subscriptions of the same `sub` label share
 * it), not once per socket.
 */
import type { LogEvent } from "../events/envelope.ts"
import { CloseCodes } from "./closeCodes.ts"
import type { CloseReason, StreamConnection } from "./connections.ts"
import type { Outbox, Writes } from "./outbox.ts"
import type { WsTopics } from "./wsTopics.ts"

/** The runtime's socket, as the transport needs it. */
export interface WireSocket {
  /** Send text frames, in one write where the runtime can; false when the runtime dropped one (its own buffer was full). */
  send(frames: ReadonlyArray<string>): boolean
  /** Bytes sent but not yet written to the network. */
  bufferedAmount(): number
  close(code: number, reason: string): void
  /** The runtime's pub/sub (Bun), when it has one: frames published to `topic` reach this socket, in order with its own. */
  subscribe?(topic: string): void
  unsubscribe?(topic: string): void
}

export interface WsOptions {
  /** Whether `subject` is the bearer's (false while a socket waits for its `auth` frame). */
  readonly identified: boolean
  subject: string
  /** When the bearer's token expires (ms); the socket is closed then. */
  expiresAt: number
  /** Bytes the connection may hold unsent before it is closed as a slow consumer. */
  readonly bufferBytes: number
  /** The gateway's coalesced writes. */
  readonly writes: Writes
  /** The gateway's event frames, shared by its sockets. */
  readonly frames: EventFrames
  /** The gateway's WebSocket topics, when the runtime has pub/sub. */
  readonly topics?: WsTopics | undefined
  readonly onClose: (reason: CloseReason) => void
}

export class WsConnection implements Outbox, StreamConnection {
  readonly transport = "ws"
  queued = false
  lastWrite = Date.now()
  private pending: Array<string> = []
  /** Characters of `pending` (bytes for the ASCII of most frames). */
  private pendingSize = 0
  private pendingEvents = 0
  private closed = false
  private identified: boolean

  constructor(
    private readonly socket: WireSocket,
    private readonly options: WsOptions
  ) {
    this.identified = options.identified
  }

  get subject(): string {
    return this.options.subject
  }

  get expiresAt(): number {
    return this.options.expiresAt
  }

  /** Until an `auth` frame names the bearer, the deadline is for authenticating. */
  get expiryReason(): CloseReason {
    return this.identified ? "token_expired" : "unauthorized"
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Who the socket now speaks for, after an `auth` frame (or a token refresh). */
  identify(subject: string, expiresAt: number): void {
    this.options.subject = subject
    this.options.expiresAt = expiresAt
    this.identified = true
  }

  /** Queue a frame; it goes out with the others of this turn. */
  send(frame: string): void {
    if (this.closed) return
    this.pending.push(frame)
    this.pendingSize += frame.length
    this.options.writes.schedule(this)
  }

  get capacity(): number {
    return this.options.bufferBytes
  }

  /** Pacing (SPEC §8.1): frames of this turn plus what the runtime has not written to the network. */
  backlog(): number {
    return this.closed ? 0 : this.pendingSize + this.socket.bufferedAmount()
  }

  whenUnder(mark: number, ready: () => void): () => void {
    return this.options.writes.whenDrained(() => this.backlog(), mark, ready)
  }

  /** Queue the frame of `event` for the subscription whose frames start with `prefix` (counted in the delivery metrics). */
  sendEvent(prefix: string, event: LogEvent): void {
    if (this.closed) return
    this.pendingEvents++
    this.send(this.options.frames.of(prefix, event))
  }

  /** The topics this socket can join: the gateway's, when both the runtime and this socket have pub/sub. */
  get topics(): WsTopics | undefined {
    return this.socket.subscribe === undefined ? undefined : this.options.topics
  }

  /** Receive what is published to `topic`, after what this socket has queued (sent now, so the order holds). */
  subscribe(topic: string): void {
    this.flush()
    if (!this.closed) this.socket.subscribe?.(topic)
  }

  unsubscribe(topic: string): void {
    if (!this.closed) this.socket.unsubscribe?.(topic)
  }

  /** Liveness of a WebSocket is the runtime's protocol pings (WS_IDLE_TIMEOUT_S): nothing to write. */
  heartbeat(): void {
    this.lastWrite = this.options.writes.roundTime
  }

  flush(): void {
    if (this.closed || this.pending.length === 0) return
    const frames = this.pending
    this.pending = []
    this.pendingSize = 0
    if (this.pendingEvents > 0) {
      this.options.writes.countDelivered("ws", this.pendingEvents)
      this.pendingEvents = 0
    }
    this.lastWrite = this.options.writes.roundTime
    if (!this.socket.send(frames)) this.close("slow_consumer")
    else this.closeIfSlow()
  }

  /** Its write threw: closed for good (`write_failed`, 1011), without trying to write what is queued. */
  failed(): void {
    this.pending = []
    this.pendingSize = 0
    this.close("write_failed")
  }

  /** Close with 4008 when more than CLIENT_BUFFER_BYTES wait to be written (a slow consumer). */
  closeIfSlow(): void {
    if (this.backlog() > this.options.bufferBytes) this.close("slow_consumer")
  }

  /** Send what is queued (unless the client is too slow for it), then close with the code for `reason`. */
  close(reason: CloseReason): void {
    if (this.closed) return
    if (reason !== "slow_consumer") {
      try {
        this.flush()
      } catch {
        // The runtime's socket is past writing to (see Writes): closed as write_failed instead.
        return this.failed()
      }
    }
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.pendingSize = 0
    const { code, reason: text } = CloseCodes[reason]
    // Counted out first: a socket whose close throws (see `failed`) is not kept among the open ones.
    try {
      this.options.onClose(reason)
    } finally {
      this.socket.close(code, text)
    }
  }

  /** The runtime reports the socket closed (by the client, or after our close). */
  closedByPeer(): void {
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.pendingSize = 0
    this.options.onClose("client_gone")
  }
}

/** The part of an event frame before the envelope: built once per subscription. */
export const eventFramePrefix = (sub: string): string => `{"op":"event","sub":${JSON.stringify(sub)},"event":`

export const eventFrame = (prefix: string, event: LogEvent): string => prefix + event.json + "}"

/**
 * The frames of the event being fanned out, by prefix. A live event reaches
 * every socket in one synchronous pass, so remembering only the last event is
 * enough for sockets whose subscriptions carry the same `sub` (clients number
 * theirs `s1`, `s2`…) to send one shared string instead of joining their own.
 */
export class EventFrames {
  private event: LogEvent | undefined
  private readonly byPrefix = new Map<string, string>()

  of(prefix: string, event: LogEvent): string {
    if (event !== this.event) {
      this.event = event
      this.byPrefix.clear()
    }
    let frame = this.byPrefix.get(prefix)
    if (frame === undefined) {
      frame = eventFrame(prefix, event)
      this.byPrefix.set(prefix, frame)
    }
    return frame
  }
}

/** A control frame of the protocol (everything but `event`): rare, so plain JSON.stringify. */
export const controlFrame = (op: string, fields: Record<string, unknown> = {}): string => JSON.stringify({ op, ...fields })
