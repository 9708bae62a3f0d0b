/**
 * WebSocket on the wire (SPEC §4.3): one connection's outbound frames, sent
 * together once per event-loop turn, with a bounded buffer. Runtime-neutral:
 * the runtime entry supplies a `WireSocket` for its socket type (Bun corks
 * the frames of one turn into one write).
 *
 * An event frame is a short per-subscription prefix joined to the event's
 * envelope JSON, which the event builds once for every client.
 */
import type { LogEvent } from "../events/envelope.ts"
import { CloseCodes, type CloseKind } from "./closeCodes.ts"
import { type Outbox, scheduleFlush } from "./outbox.ts"

/** The runtime's socket, as the transport needs it. */
export interface WireSocket {
  /** Send text frames, in one write where the runtime can; false when the runtime dropped one (its own buffer was full). */
  send(frames: ReadonlyArray<string>): boolean
  /** Bytes sent but not yet written to the network. */
  bufferedAmount(): number
  close(code: number, reason: string): void
}

export interface WsOptions {
  /** Bytes the connection may hold unsent before it is closed as a slow consumer. */
  readonly bufferBytes: number
  readonly onClose: (kind: CloseKind) => void
}

export class WsConnection implements Outbox {
  queued = false
  private pending: Array<string> = []
  private closed = false

  constructor(
    private readonly socket: WireSocket,
    private readonly options: WsOptions
  ) {}

  get isClosed(): boolean {
    return this.closed
  }

  /** Queue a frame; it goes out with the others of this turn. */
  send(frame: string): void {
    if (this.closed) return
    this.pending.push(frame)
    scheduleFlush(this)
  }

  flush(): void {
    if (this.closed || this.pending.length === 0) return
    const frames = this.pending
    this.pending = []
    const accepted = this.socket.send(frames)
    if (!accepted || this.socket.bufferedAmount() > this.options.bufferBytes) this.close("slowConsumer")
  }

  /** Send what is queued (unless the client is too slow for it), then close with the code of `kind`. */
  close(kind: CloseKind): void {
    if (this.closed) return
    if (kind !== "slowConsumer") this.flush()
    if (this.closed) return
    this.closed = true
    this.pending = []
    const { code, reason } = CloseCodes[kind]
    this.socket.close(code, reason)
    this.options.onClose(kind)
  }

  /** The runtime reports the socket closed (by the client, or after our close). */
  closedByPeer(): void {
    if (this.closed) return
    this.closed = true
    this.pending = []
    this.options.onClose("normal")
  }
}

/** The part of an event frame before the envelope: built once per subscription. */
export const eventFramePrefix = (sub: string): string => `{"op":"event","sub":${JSON.stringify(sub)},"event":`

export const eventFrame = (prefix: string, event: LogEvent): string => prefix + event.json + "}"

/** A control frame of the protocol (everything but `event`): rare, so plain JSON.stringify. */
export const controlFrame = (op: string, fields: Record<string, unknown> = {}): string => JSON.stringify({ op, ...fields })
