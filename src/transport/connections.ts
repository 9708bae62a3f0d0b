/**
 * Every open streaming connection of this instance (SSE responses and
 * WebSockets), in one registry with one timer: heartbeats for quiet ones,
 * closing those whose token expired, the connection limits (SPEC §6), and
 * closing them all on shutdown.
 */
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import type { LogLine } from "../observability/log.ts"
import { MemoryReducer } from "./memoryReducer.ts"
import { Writes } from "./outbox.ts"
import { EventFrames } from "./websocket.ts"
import { type Publish, WsTopics } from "./wsTopics.ts"
import { TRANSPORTS, type Transport } from "./transports.ts"


/** Why the server closed a connection (also the `reason` label of the disconnect metric). */
export type CloseReason =
  | "completed"
  | "failed"
  | "cancelled"
  | "client_gone"
  | "slow_consumer"
  | "token_expired"
  | "unauthorized"
  | "limit"
  | "shutdown"
  | "message_too_big"
  /** The runtime's stream or socket threw on a write (see Writes): cut, the client resumes. */
  | "write_failed"

/** The server's closes counted in the disconnect metric (and, but for the drain's, logged). */
const COUNTED: ReadonlySet<CloseReason> = new Set<CloseReason>(["slow_consumer", "token_expired", "unauthorized", "shutdown", "write_failed"])

const CUT_SHORT: Partial<Record<CloseReason, string>> = {
  slow_consumer: "the client read too slowly; reconnect with the last event id",
  token_expired: "the token expired; reconnect with a fresh one and the last event id",
  shutdown: "the gateway is shutting down; reconnect with the last event id"
}

/** Why a stream ended before its task did, in words a protocol's error can carry. */
export const cutShort = (reason: CloseReason): string => CUT_SHORT[reason] ?? reason

export interface StreamConnection {
  readonly transport: Transport
  readonly subject: string
  /** When the connection last wrote; heartbeats fill longer silences. */
  readonly lastWrite: number
  /** When the bearer's token expires (ms since epoch; Infinity without one). */
  readonly expiresAt: number
  /** Why the connection closes at `expiresAt` (default: its token expired). */
  readonly expiryReason?: CloseReason
  /** No frame is accepted any more. */
  readonly isClosed: boolean
  heartbeat(): void
  close(reason: CloseReason): void
}

export interface ConnectionLimits {
  /** 0 = unlimited */
  readonly maxConnections: number
  readonly maxConnectionsPerSubject: number
}

/**
 * A place reserved for one connection of `subject`, given back once: by `release`, or, once
 * handed over to the SSE stream it was reserved for, when that stream closes (`Connections.closed`).
 * An object with methods rather than closures: every open WebSocket holds one.
 */
export class Admitted {
  readonly ok = true as const
  private released = false

  constructor(private readonly connections: Connections, private readonly subject: string) {}

  release(): void {
    if (this.released) return
    this.released = true
    this.connections.free(this.subject)
  }

  /**
   * The SSE connection of this subject, made with the connections as its owner, now holds the
   * place, and `Connections.closed` gives it back: the connection keeps no object of its own for
   * it (memory per idle stream). `release` does nothing from then on.
   */
  handOver(): void {
    this.released = true
  }
}

export type Admission = Admitted | {
  readonly ok: false
  readonly limit: "max_connections" | "max_connections_per_subject"
}

export class Connections {
  /** This gateway's coalesced writes, shared by its connections. */
  readonly writes: Writes
  /** This gateway's WebSocket event frames, shared by its sockets. */
  readonly wsFrames = new EventFrames()
  /** This gateway's WebSocket topics, when the runtime has pub/sub. */
  readonly wsTopics: WsTopics | undefined
  private readonly open = new Set<StreamConnection>()
  private readonly perTransport = Object.fromEntries(TRANSPORTS.map((transport) => [transport, 0])) as Record<Transport, number>
  private readonly reserved = new Map<string, number>()
  private reservedTotal = 0
  /** Set by `closeAll` (the drain): a connection added later, whose request passed the draining check before, closes at once. */
  private closedWith: CloseReason | undefined = undefined
  private readonly timer: ReturnType<typeof setInterval>
  /** Gives back what a surge of connections left, when the runtime can. */
  private readonly reducer: MemoryReducer | undefined
  private reducedLog: ReturnType<typeof setTimeout> | undefined = undefined

  private readonly gauges: Record<Transport, (value: number) => void>

  constructor(
    private readonly heartbeatMs: number,
    private readonly limits: ConnectionLimits,
    private readonly metrics: MetricsRecorder,
    private readonly logLine: LogLine,
    publish?: Publish,
    reduceMemory?: () => void
  ) {
    this.writes = new Writes((error) =>
      logLine("error", "a connection's write failed; it is closed, the others go on", { error: error instanceof Error ? error.message : String(error) })
    )
    this.reducer = reduceMemory === undefined ? undefined : new MemoryReducer(() => this.reduceMemory(reduceMemory))
    this.wsTopics = publish === undefined ? undefined : new WsTopics(publish, this.wsFrames, this.writes, metrics.labelled(Metrics.wsTopicSubscriptions, {}))
    this.gauges = Object.fromEntries(TRANSPORTS.map((transport) => [transport, metrics.labelled(Metrics.connections, { transport })])) as Record<
      Transport,
      (value: number) => void
    >
    // Ticking at a quarter of the interval keeps each silence within 125% of it.
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(1000, Math.floor(heartbeatMs / 4))))
  }

  /** Reserve a place for a new connection of `subject`, or say which limit refuses it. */
  admit(subject: string): Admission {
    const { maxConnections, maxConnectionsPerSubject } = this.limits
    if (maxConnections > 0 && this.reservedTotal >= maxConnections) return this.refuse("max_connections")
    const mine = this.reserved.get(subject) ?? 0
    if (maxConnectionsPerSubject > 0 && mine >= maxConnectionsPerSubject) return this.refuse("max_connections_per_subject")
    this.reserved.set(subject, mine + 1)
    this.reservedTotal++
    return new Admitted(this, subject)
  }

  /** A place of `subject` is free again: for `Admitted.release` and `closed` only, each called once per place. */
  free(subject: string): void {
    this.reservedTotal--
    const left = (this.reserved.get(subject) ?? 1) - 1
    if (left === 0) this.reserved.delete(subject)
    else this.reserved.set(subject, left)
  }

  /**
   * Count `connection` among the open ones: not one already closed (an SSE stream whose first
   * frames were over CLIENT_BUFFER_BYTES on web streams), and one that comes after `closeAll` is
   * closed as the others were.
   */
  add(connection: StreamConnection): void {
    if (connection.isClosed) return
    this.open.add(connection)
    this.gauges[connection.transport](++this.perTransport[connection.transport])
    this.reducer?.changed()
    if (this.closedWith !== undefined) connection.close(this.closedWith)
  }

  /**
   * An SSE connection that holds its place (`Admitted.handOver`) closed, once: it leaves the open
   * ones, and its place is free. Not for a WebSocket (its subject can change after it was admitted).
   */
  closed(reason: CloseReason, connection: StreamConnection): void {
    this.remove(connection, reason)
    this.free(connection.subject)
  }

  /** Forget a connection; `reason` is recorded when the server closed it. */
  remove(connection: StreamConnection, reason: CloseReason): void {
    if (!this.open.delete(connection)) return
    this.gauges[connection.transport](--this.perTransport[connection.transport])
    this.reducer?.changed()
    if (COUNTED.has(reason)) {
      this.metrics.record(Metrics.disconnects, 1, { reason, transport: connection.transport })
      if (reason !== "shutdown") this.logLine("warn", "connection closed", { reason, transport: connection.transport, subject: connection.subject })
    }
  }

  get size(): number {
    return this.open.size
  }

  /** Close every connection (graceful shutdown: clients resume elsewhere). */
  closeAll(reason: CloseReason): void {
    this.closedWith = reason
    for (const connection of [...this.open]) connection.close(reason)
  }

  stop(): void {
    clearInterval(this.timer)
    this.reducer?.stop()
    clearTimeout(this.reducedLog)
    this.writes.stop()
  }

  private reduceMemory(reduce: () => void): void {
    const started = performance.now()
    reduce()
    // The runtime may collect once this callback has returned: the pause lasts until the next turn.
    this.reducedLog = setTimeout(() => {
      this.logLine("debug", "memory reduced after a surge of connections", {
        connections: this.open.size,
        pauseMs: Math.round(performance.now() - started)
      })
    }, 0)
  }

  private refuse(limit: "max_connections" | "max_connections_per_subject"): Admission {
    this.metrics.record(Metrics.limitRejections, 1, { limit })
    return { ok: false, limit }
  }

  private tick(): void {
    const now = Math.max(Date.now(), this.writes.roundTime)
    for (const connection of this.open) {
      if (now >= connection.expiresAt) connection.close(connection.expiryReason ?? "token_expired")
      else if (now - connection.lastWrite >= this.heartbeatMs) connection.heartbeat()
    }
  }
}
