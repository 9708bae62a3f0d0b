/**
 * One connection to the gateway carrying many task subscriptions, whatever
 * the transport: it opens a link on the preferred transport, falls back when
 * that cannot be established or stays silent past the probe time, reopens
 * after a drop or an expired token (asking the token function for a new one),
 * tries the preferred transport again later, and resumes every subscription
 * from its position — so each event is delivered once, in order (SPEC §12).
 * The link closes when no subscription is left, and opens again with the next.
 */
import { EndOf, isTerminalType, type Resync, type TaskEnd, type TaskEvent } from "./events.ts"
import { afterEnd, afterEstablished, firstPlan, type Outcome, type Plan, preferredFailed, preferredWorks, type Timing, transportOf } from "./fallback.ts"
import { type Link, type LinkEvents, type LinkSubscription, type Refusal, TRANSPORTS, type TransportName } from "./link.ts"
import { Position } from "./position.ts"
import { openSseLink } from "./sseLink.ts"
import { currentToken, type Endpoint } from "./url.ts"
import { openWebSocketLink } from "./wsLink.ts"

/**
 * - `connecting`: opening (or reopening) a link;
 * - `fallback`: the preferred transport did not get through: on (or trying) the next one;
 * - `open`: a link got through; `offline`: the browser is offline, waiting for the network;
 * - `idle`: no subscription, no link; `closed`: closed, or gave up (a refused token that cannot be renewed).
 */
export type ConnectionState = "connecting" | "fallback" | "open" | "offline" | "idle" | "closed"

export interface ConnectionStatus {
  readonly state: ConnectionState
  /** The transport in use or being tried. */
  readonly transport: TransportName | undefined
}

export interface ConnectionOptions extends Endpoint {
  /** Transports in order of preference (default: websocket, then sse). */
  readonly transports?: ReadonlyArray<TransportName>
  /** How long an open link may stay silent before it counts as buffered and the next transport is tried (default 4 s). */
  readonly probeMs?: number
  /** First wait before trying the preferred transport again after a fallback (default 30 s; doubles while it fails). */
  readonly retryPreferredMs?: number
  /** Longest wait between attempts while the gateway is unreachable (default 10 s). */
  readonly maxRetryMs?: number
  /** The WebSocket implementation (for runtimes without a global one). */
  readonly WebSocket?: typeof WebSocket
  /** The fetch implementation used by the SSE transport. */
  readonly fetch?: typeof fetch
}

/** Where a connection delivers what its subscriptions receive, by subscription key. */
export interface Deliveries {
  event(key: string, event: TaskEvent): void
  end(key: string, end: TaskEnd, event?: TaskEvent): void
  resync(key: string, resync: Resync): void
  error(key: string, refusal: Refusal): void
  status(status: ConnectionStatus): void
}

const RETRYABLE_REFUSALS = new Set(["log_unavailable"])
const jitter = (ms: number) => (ms === 0 ? 0 : ms * (0.8 + Math.random() * 0.4))
const isOffline = () => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false

export class Connection {
  private readonly subscriptions = new Map<string, { readonly subscription: LinkSubscription; readonly position: Position }>()
  private readonly timing: Timing
  private readonly probeMs: number
  private plan: Plan
  private link: Link | undefined
  /** The preferred transport, being tried again while a fallback link carries the subscriptions. */
  private candidate: Link | undefined
  private status: ConnectionStatus = { state: "idle", transport: undefined }
  private timers = { retry: undefined as ReturnType<typeof setTimeout> | undefined, probe: undefined as ReturnType<typeof setTimeout> | undefined, preferred: undefined as ReturnType<typeof setTimeout> | undefined }
  /** Bumped by every connect and close, so a token that resolves late opens nothing. */
  private generation = 0
  private connecting = false
  private closed = false

  constructor(private readonly options: ConnectionOptions, private readonly deliveries: Deliveries) {
    this.plan = firstPlan(options.transports ?? TRANSPORTS)
    this.probeMs = options.probeMs ?? 4000
    this.timing = { retryMs: 250, maxRetryMs: options.maxRetryMs ?? 10_000, retryPreferredMs: options.retryPreferredMs ?? 30_000 }
    globalThis.addEventListener?.("online", this.online)
  }

  add(subscription: LinkSubscription): void {
    if (this.closed || this.subscriptions.has(subscription.key)) return
    const entry = { subscription, position: new Position(subscription.since) }
    this.subscriptions.set(subscription.key, entry)
    const from = this.from(entry)
    this.link?.add(from)
    this.candidate?.add(from)
    if (this.link === undefined && !this.connecting && this.timers.retry === undefined && this.status.state !== "offline") void this.connect()
  }

  remove(key: string): void {
    if (!this.subscriptions.delete(key)) return
    this.link?.remove(key)
    this.candidate?.remove(key)
    // Removing one task and adding another in the same turn keeps the link.
    if (this.subscriptions.size === 0) setTimeout(() => this.subscriptions.size === 0 && this.idle(), 0)
  }

  close(): void {
    this.closed = true
    this.subscriptions.clear()
    this.stopLinks()
    globalThis.removeEventListener?.("online", this.online)
    this.setStatus("closed", undefined)
  }

  /** A subscription as it resumes now: after its last delivered id. */
  private from({ subscription, position }: { readonly subscription: LinkSubscription; readonly position: Position }): LinkSubscription {
    return position.lastEventId === undefined ? subscription : { ...subscription, since: position.lastEventId }
  }

  private setStatus(state: ConnectionState, transport: TransportName | undefined): void {
    if (this.status.state === state && this.status.transport === transport) return
    this.status = { state, transport }
    this.deliveries.status(this.status)
  }

  private readonly online = () => {
    if (this.status.state === "offline" && this.subscriptions.size > 0) void this.connect()
  }

  private stopLinks(): void {
    this.generation++
    this.connecting = false
    for (const timer of Object.values(this.timers)) clearTimeout(timer)
    this.timers = { retry: undefined, probe: undefined, preferred: undefined }
    this.link?.close()
    this.candidate?.close()
    this.link = undefined
    this.candidate = undefined
  }

  private idle(): void {
    if (this.closed) return
    this.stopLinks()
    this.setStatus("idle", undefined)
  }

  private async open(transport: TransportName, events: (link: () => Link | undefined) => LinkEvents): Promise<Link | undefined> {
    const generation = this.generation
    let token: string | undefined
    try {
      token = await currentToken(this.options.token)
    } catch {
      token = undefined
    }
    if (generation !== this.generation || this.closed) return undefined
    let link: Link | undefined
    const options = { baseUrl: this.options.baseUrl, token, events: events(() => link), WebSocket: this.options.WebSocket, fetch: this.options.fetch }
    link = transport === "websocket" ? openWebSocketLink(options) : openSseLink(options)
    for (const entry of this.subscriptions.values()) link.add(this.from(entry))
    return link
  }

  private async connect(): Promise<void> {
    clearTimeout(this.timers.retry)
    this.timers.retry = undefined
    if (this.closed || this.subscriptions.size === 0) return this.idle()
    const transport = transportOf(this.plan)
    this.setStatus(this.plan.index > 0 ? "fallback" : "connecting", transport)
    this.connecting = true
    const link = await this.open(transport, (self) => this.linkEvents(self))
    if (link === undefined) return
    this.connecting = false
    this.link = link
    this.timers.probe = setTimeout(() => {
      if (this.link !== link) return
      link.close()
      this.ended("silent")
    }, this.probeMs)
  }

  /** The events of the current link (anything from a replaced link is ignored). */
  private linkEvents(self: () => Link | undefined): LinkEvents {
    const current = () => self() !== undefined && self() === this.link
    return {
      established: () => {
        if (!current()) return
        clearTimeout(this.timers.probe)
        const { plan, retryPreferredInMs } = afterEstablished(this.plan, this.timing)
        this.plan = plan
        this.setStatus("open", transportOf(plan))
        if (retryPreferredInMs !== undefined) this.timers.preferred = setTimeout(() => void this.tryPreferred(), jitter(retryPreferredInMs))
      },
      event: (key, event) => current() && this.deliver(key, event),
      end: (key, end) => {
        if (!current() || !this.subscriptions.delete(key)) return
        this.deliveries.end(key, end)
      },
      resync: (key, resync) => current() && this.subscriptions.has(key) && this.deliveries.resync(key, resync),
      refused: (key, refusal) => current() && this.refused(key, refusal),
      closed: (end) => current() && this.ended(end)
    }
  }

  private deliver(key: string, event: TaskEvent): void {
    const entry = this.subscriptions.get(key)
    if (entry === undefined || !entry.position.accept(event)) return
    this.deliveries.event(key, event)
    if (!isTerminalType(event.type)) return
    this.remove(key)
    this.deliveries.end(key, EndOf[event.type], event)
  }

  private refused(key: string, refusal: Refusal): void {
    const entry = this.subscriptions.get(key)
    if (entry === undefined) return
    if (RETRYABLE_REFUSALS.has(refusal.code)) {
      // The log may come back: subscribe again a little later, from where it stands.
      setTimeout(() => this.subscriptions.get(key) === entry && this.link?.add(this.from(entry)), jitter(1000))
      return
    }
    this.subscriptions.delete(key)
    this.deliveries.error(key, refusal)
  }

  private ended(outcome: Outcome): void {
    this.link = undefined
    this.stopLinks()
    if (this.closed || this.subscriptions.size === 0) return this.idle()
    if (isOffline()) return this.setStatus("offline", undefined)
    const decision = afterEnd(this.plan, outcome, this.timing, typeof this.options.token === "function")
    if (decision.action === "give_up") {
      const refusal = { status: 401, code: "unauthorized", message: "the gateway refused the token" }
      const keys = [...this.subscriptions.keys()]
      this.subscriptions.clear()
      this.setStatus("closed", undefined)
      for (const key of keys) this.deliveries.error(key, refusal)
      return
    }
    this.plan = decision.plan
    this.setStatus(decision.fallback ? "fallback" : "connecting", transportOf(decision.plan))
    this.timers.retry = setTimeout(() => void this.connect(), jitter(decision.delayMs))
  }

  /** Open the preferred transport beside the fallback link; switch to it once it gets through. */
  private async tryPreferred(): Promise<void> {
    const fallback = this.link
    if (fallback === undefined || this.candidate !== undefined) return
    const retryLater = () => {
      if (this.link !== fallback) return
      this.candidate = undefined
      this.plan = preferredFailed(this.plan)
      const { retryPreferredInMs } = afterEstablished(this.plan, this.timing)
      if (retryPreferredInMs !== undefined) this.timers.preferred = setTimeout(() => void this.tryPreferred(), jitter(retryPreferredInMs))
    }
    const candidate = await this.open(this.plan.transports[0], (self) => ({
      ...this.linkEvents(self),
      established: () => {
        if (self() !== this.candidate || this.link !== fallback) return
        clearTimeout(this.timers.probe)
        fallback.close()
        this.link = self()
        this.candidate = undefined
        this.plan = preferredWorks(this.plan)
        this.setStatus("open", transportOf(this.plan))
      },
      closed: (end) => {
        if (self() === this.candidate) return retryLater()
        if (self() === this.link) this.ended(end)
      }
    }))
    if (candidate === undefined || this.link !== fallback) return candidate?.close()
    this.candidate = candidate
    this.timers.probe = setTimeout(() => {
      if (this.candidate !== candidate) return
      candidate.close()
      retryLater()
    }, this.probeMs)
  }
}
