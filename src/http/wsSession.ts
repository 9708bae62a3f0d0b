/**
 * One WebSocket client's session (SPEC §4.3): its subscriptions, each a
 * TaskStream subscription with its own `sub` id, and the commands it sends.
 *
 * A subscription runs in one fiber that opens the task, starts the pipeline
 * and then holds its scope until unsubscribe, end or socket close; the
 * session's FiberMap holds these fibers by `sub` and interrupts those left
 * when the socket's scope closes. Events
 * reach the socket through plain callbacks (no Effect per event). The frames
 * about one `sub` (subscribe, pause, resume, unsubscribe) are handled one
 * after another, in the order sent: one that arrives while the subscription is
 * still opening waits for it, and so does every later frame about that `sub`,
 * so its replies come in the order of the frames.
 */
import { Cause, Effect, Exit, FiberMap, Result } from "effect"
import type { LogEvent } from "../events/envelope.ts"
import { parseEventId } from "../events/envelope.ts"
import { parseTypeFilter } from "../events/filter.ts"
import { type EndReason, type Sink, type Subscription, TaskStream } from "../stream/TaskStream.ts"
import type { Admission } from "../transport/connections.ts"
import { controlFrame, eventFramePrefix, type WsConnection } from "../transport/websocket.ts"
import { type Topic, type TopicMember, topicKey } from "../transport/wsTopics.ts"
import type { Action, Principal } from "./auth.ts"
import type { RouteDeps } from "./deps.ts"
import { admissionError } from "./guard.ts"
import { overCommandRate, queueCommand } from "./commands.ts"
import { type DomainError, toApiError } from "./respond.ts"
import { Auth, type ClientFrame, Command, decodeClientFrame, type ProtocolError, Subscribe } from "./wsProtocol.ts"

/**
 * Where one subscription's deliveries go: frames tagged with its `sub`, until it is detached.
 * While the subscription is live, its events go through its topic when the runtime has
 * pub/sub (see wsTopics.ts): it asks to join between deliveries, until it is in step.
 */
class SubscriptionSink implements Sink, TopicMember {
  private readonly prefix: string
  private attached = true
  /** The subscription, once it has been live; `isLive` while it is. */
  subscription!: Subscription
  private isLive = false
  private topic: Topic | undefined
  private joinAsked = false

  constructor(
    private readonly connection: WsConnection,
    private readonly sub: string,
    /** The topic of the subscription's shape; undefined when the socket has no pub/sub. */
    private readonly topicKey: string | undefined,
    private readonly onEnd: () => void
  ) {
    this.prefix = eventFramePrefix(sub)
  }

  event(event: LogEvent): void {
    if (!this.attached) return
    if (this.topic !== undefined) return this.topic.send(event)
    this.connection.sendEvent(this.prefix, event)
    if (this.isLive) this.askToJoin()
  }

  live(subscription: Subscription): void {
    this.subscription = subscription
    this.isLive = true
    this.askToJoin()
  }

  offline(): void {
    this.isLive = false
    this.leaveTopic()
  }

  /** After the deliveries of this turn (members compare positions between deliveries, never during one). */
  private askToJoin(): void {
    if (this.joinAsked || this.topicKey === undefined) return
    this.joinAsked = true
    queueMicrotask(this.join)
  }

  private readonly join = (): void => {
    this.joinAsked = false
    const topics = this.connection.topics
    if (!this.attached || !this.isLive || this.topic !== undefined || topics === undefined || this.connection.isClosed) return
    const topic = topics.join(this.topicKey!, this.prefix, this)
    if (topic === undefined) return
    this.topic = topic
    this.connection.subscribe(topic.key)
  }

  private leaveTopic(): void {
    const topic = this.topic
    if (topic === undefined) return
    this.topic = undefined
    topic.leave(this)
    this.connection.unsubscribe(topic.key)
  }

  resync(oldest: string): void {
    if (this.attached) this.connection.send(controlFrame("resync", { sub: this.sub, reason: "history_trimmed", oldest }))
  }

  end(reason: EndReason): void {
    if (!this.attached) return
    this.connection.send(controlFrame("end", { sub: this.sub, reason }))
    this.onEnd()
  }

  get capacity(): number {
    return this.connection.capacity
  }

  checkBacklog(): void {
    this.connection.closeIfSlow()
  }

  /** The subscriptions of a socket share its queue: each paces its history by the whole of it. */
  backlog(): number {
    return this.connection.backlog()
  }

  whenUnder(mark: number, ready: () => void): () => void {
    return this.connection.whenUnder(mark, ready)
  }

  /** Nothing more reaches the socket from this subscription, from now on. */
  detach(): void {
    this.attached = false
    this.leaveTopic()
  }
}

interface Entry {
  readonly task: { readonly agentId: string; readonly taskId: string }
  readonly sink: SubscriptionSink
  /** The running subscription once started; undefined when it failed or ended first. */
  readonly ready: Promise<Subscription | undefined>
}

type SubscribeFrame = typeof Subscribe.Type
type CommandFrame = typeof Command.Type
type AuthFrame = typeof Auth.Type

/** A socket opened without a token: it may only authenticate (or ping) until it does. */
export interface PendingAuth {
  /** Names the client for the token's verifier when the gateway runs open. */
  readonly anonymous: string
  /** Exchange the socket's provisional place under the connection limits for one of `subject`. */
  readonly admit: (subject: string) => Admission
}

export class WsSession {
  private readonly subscriptions = new Map<string, Entry>()
  /** Per `sub`, the frames about it still being handled (the last one's completion). */
  private readonly inOrder = new Map<string, Promise<void>>()
  /** Undefined until a socket opened without a token authenticates. */
  private principal: Principal | undefined
  private readonly pending: PendingAuth | undefined

  constructor(
    private readonly deps: RouteDeps,
    /** The subscriptions' fibers by `sub`, in the socket's scope. */
    private readonly fibers: FiberMap.FiberMap<string, void>,
    private readonly connection: WsConnection,
    principal: Principal | PendingAuth
  ) {
    this.pending = "anonymous" in principal ? principal : undefined
    this.principal = "anonymous" in principal ? undefined : principal
  }

  receive(text: string): void {
    const frame = decodeClientFrame(text)
    if (Result.isFailure(frame)) return this.error(frame.failure)
    this.dispatch(frame.success)
  }

  receiveBinary(): void {
    this.error({ code: "invalid_frame", message: "binary frames are not part of the protocol; send JSON text frames" })
  }

  /** The socket closed: release every subscription. */
  close(): void {
    for (const sub of [...this.subscriptions.keys()]) this.release(sub)
  }

  private dispatch(frame: ClientFrame): void {
    if (this.principal === undefined && frame.op !== "auth" && frame.op !== "ping") {
      const echo = { ...("ref" in frame && frame.ref !== undefined ? { ref: frame.ref } : {}), ...("sub" in frame ? { sub: frame.sub } : {}) }
      return this.error({ ...echo, code: "unauthorized", message: 'authenticate first: send {"op":"auth","token":"…"}' })
    }
    switch (frame.op) {
      case "auth":
        return void this.authenticate(frame)
      case "subscribe":
        return this.serial(frame.sub, () => this.subscribe(frame))
      case "unsubscribe":
        return this.whenReady(frame.sub, () => {
          this.release(frame.sub)
          this.connection.send(controlFrame("unsubscribed", { sub: frame.sub }))
        })
      case "pause":
        return this.whenReady(frame.sub, (subscription) => {
          subscription.pause()
          this.connection.send(controlFrame("paused", { sub: frame.sub, position: subscription.position }))
        })
      case "resume":
        return this.whenReady(frame.sub, (subscription) => {
          this.connection.send(controlFrame("resumed", { sub: frame.sub }))
          subscription.resume()
        })
      case "command":
        return this.command(frame)
      case "ping":
        return this.connection.send(controlFrame("pong", frame.ref === undefined ? {} : { ref: frame.ref }))
    }
  }

  /** Verify an `auth` frame: first authentication of a pending socket, or a token refresh. */
  private async authenticate(frame: AuthFrame): Promise<void> {
    const echo = frame.ref === undefined ? {} : { ref: frame.ref }
    const verified = await this.deps.auth.authenticate(frame.token, this.pending?.anonymous ?? this.principal!.subject)
    if (this.connection.isClosed) return
    if (Result.isFailure(verified)) {
      this.error({ ...echo, code: verified.failure.code, message: verified.failure.message })
      if (this.principal === undefined) this.connection.close("unauthorized")
      return
    }
    const principal = verified.success
    if (this.principal !== undefined && principal.subject !== this.principal.subject) {
      return this.error({ ...echo, code: "forbidden", message: "a refreshed token must name the same subject" })
    }
    if (this.principal === undefined) {
      const admission = this.pending!.admit(principal.subject)
      if (!admission.ok) {
        this.error({ ...echo, ...admissionError(admission.limit) })
        return this.connection.close("limit")
      }
    }
    this.principal = principal
    this.connection.identify(principal.subject, principal.expiresAt)
    this.connection.send(controlFrame("authenticated", { ...echo, subject: principal.subject }))
    // A refreshed token may allow less: subscriptions it no longer covers end here.
    for (const [sub, entry] of [...this.subscriptions]) {
      if (principal.may("subscribe", entry.task.agentId, entry.task.taskId)) continue
      this.release(sub)
      this.error({ sub, code: "forbidden", message: `the refreshed token does not allow subscribe on ${entry.task.agentId}/${entry.task.taskId}; the subscription is closed` })
    }
  }

  private subscribe(frame: SubscribeFrame): void {
    const { sub } = frame
    if (!this.allowed("subscribe", frame, { sub })) return
    if (this.subscriptions.has(sub)) {
      return this.error({ code: "duplicate_sub", sub, message: `subscription '${sub}' is already open on this socket` })
    }
    if (this.subscriptions.size >= this.deps.config.maxSubscriptionsPerSocket) {
      return this.error({
        code: "too_many_subscriptions",
        sub,
        message: `a socket holds at most ${this.deps.config.maxSubscriptionsPerSocket} subscriptions (MAX_SUBSCRIPTIONS_PER_SOCKET)`
      })
    }
    const types = parseTypeFilter(this.deps.registry, typeof frame.types === "object" ? frame.types.join(",") : frame.types)
    if ("error" in types) return this.error({ code: "invalid_frame", sub, message: `types: ${types.error}` })

    let started: (subscription: Subscription | undefined) => void = () => {}
    const topic = this.connection.topics === undefined ? undefined : topicKey(frame.agentId, frame.taskId, types.key, sub)
    const sink = new SubscriptionSink(this.connection, sub, topic, () => this.release(sub))
    const entry: Entry = { task: { agentId: frame.agentId, taskId: frame.taskId }, sink, ready: new Promise((resolve) => (started = resolve)) }
    this.subscriptions.set(sub, entry)
    const { connection, subscriptions } = this
    const run = Effect.gen(function*() {
      const opening = yield* (yield* TaskStream).open({
        agentId: frame.agentId,
        taskId: frame.taskId,
        after: frame.since === undefined ? undefined : parseEventId(frame.since),
        history: frame.history ?? true,
        filter: types.filter
      })
      connection.send(controlFrame("subscribed", { sub, agentId: frame.agentId, taskId: frame.taskId }))
      if (opening._tag === "Ended") return sink.end(opening.reason)
      started(yield* opening.start(sink))
      // It may have ended (and been released) while starting, before its fiber was known:
      // then finish, which closes its scope, instead of holding it open forever.
      if (subscriptions.get(sub) !== entry) return
      return yield* Effect.never
    }).pipe(
      Effect.scoped,
      Effect.catch((error: DomainError) =>
        Effect.sync(() => {
          if (this.subscriptions.get(sub) !== entry) return
          this.subscriptions.delete(sub)
          this.error({ ...toApiError(error), sub })
        })
      ),
      Effect.ensuring(Effect.sync(() => started(undefined)))
    )
    FiberMap.setUnsafe(this.fibers, sub, this.deps.runtime.fork(run))
  }

  /** Handle a frame about `sub` after the ones before it (at once when none is pending). */
  private serial(sub: string, handle: () => void | Promise<void>): void {
    const previous = this.inOrder.get(sub)
    if (previous === undefined) {
      const result = handle()
      if (result === undefined) return
      return this.track(sub, result)
    }
    this.track(sub, previous.then(handle))
  }

  private track(sub: string, pending: Promise<void>): void {
    const settled = () => {
      if (this.inOrder.get(sub) === done) this.inOrder.delete(sub)
    }
    // A handler that failed must not stop the frames after it.
    const done: Promise<void> = pending.then(settled, (error: unknown) => {
      this.deps.logLine("error", "a WebSocket frame handler failed", { sub, error: error instanceof Error ? error.message : String(error) })
      settled()
    })
    this.inOrder.set(sub, done)
  }

  /** In order with the other frames about `sub`: run `op` on the subscription once it has started. */
  private whenReady(sub: string, op: (subscription: Subscription) => void): void {
    this.serial(sub, () => {
      const entry = this.subscriptions.get(sub)
      if (entry === undefined) return this.unknownSub(sub)
      return entry.ready.then((subscription) => {
        if (subscription === undefined || this.subscriptions.get(sub) !== entry) return this.unknownSub(sub)
        op(subscription)
      })
    })
  }

  private command(frame: CommandFrame): void {
    if (!this.allowed("control", frame, { ref: frame.ref })) return
    const limited = overCommandRate(this.deps, this.principal!.subject)
    if (limited !== undefined) return this.error({ ref: frame.ref, code: limited.code, message: limited.message })
    const task = { agentId: frame.agentId, taskId: frame.taskId }
    const draft = { command: frame.command, reason: frame.reason, source: "ws", idempotencyKey: frame.ref }
    this.deps.runtime.exit(queueCommand(task, draft, this.principal!.subject)).then((exit) => {
      if (Exit.isSuccess(exit)) return this.connection.send(controlFrame("ack", { ref: frame.ref, command_id: exit.value }))
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      const error = failure === undefined ? { code: "internal" as const, message: "internal error" } : toApiError(failure.error)
      this.error({ ...error, ref: frame.ref })
    })
  }

  private release(sub: string): void {
    const entry = this.subscriptions.get(sub)
    if (entry === undefined) return
    this.subscriptions.delete(sub)
    entry.sink.detach()
    this.deps.runtime.fork(FiberMap.remove(this.fibers, sub))
  }

  /** Whether the token allows `action` on the frame's task; answers `forbidden` when not. */
  private allowed(action: Action, task: { readonly agentId: string; readonly taskId: string }, echo: { ref?: string; sub?: string }): boolean {
    if (this.principal?.may(action, task.agentId, task.taskId)) return true
    this.error({ ...echo, code: "forbidden", message: `the token does not allow ${action} on ${task.agentId}/${task.taskId}` })
    return false
  }

  private unknownSub(sub: string): void {
    this.error({ code: "unknown_sub", sub, message: `no subscription '${sub}' is open on this socket` })
  }

  private error(error: ProtocolError): void {
    const { code, message, ref, sub } = error
    this.connection.send(controlFrame("error", { ...(ref === undefined ? {} : { ref }), ...(sub === undefined ? {} : { sub }), code, message }))
  }
}
