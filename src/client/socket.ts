/**
 * `connectTaskSocket`: one WebSocket (SPEC §4.3) carrying many task
 * subscriptions, that reconnects by itself. After a reconnect every
 * subscription is opened again from the last event it delivered, so the
 * caller sees each event once and none is missed (within the retained
 * history). It also pauses/resumes delivery and sends workflow commands;
 * a command sent while disconnected goes out on reconnect under the same
 * `ref`, which the gateway treats as an idempotency key.
 */
import { EndOf, type FollowCallbacks, isAfter, isTerminalType, type TaskEnd, type TaskEvent } from "./events.ts"
import { newRef } from "./ref.ts"
import { apiUrl, backoff, currentToken, type Endpoint, type TaskRef } from "./url.ts"
import { endOf, type ServerFrame, subscribeFrame } from "./wsLink.ts"

export type CommandKind = "pause" | "resume" | "cancel"

export type SocketStatus = "connecting" | "open" | "reconnecting" | "closed"

export interface SocketError {
  readonly code: string
  readonly message: string
}

export interface TaskSocketOptions extends Endpoint {
  /** Connection state changes, for a status indicator. */
  readonly onStatus?: (status: SocketStatus) => void
  /** The WebSocket implementation (for runtimes without a global one). */
  readonly WebSocket?: typeof WebSocket
  /** Longest wait between reconnect attempts (default 5 s). */
  readonly maxRetryMs?: number
}

export interface SubscribeOptions extends TaskRef, FollowCallbacks {
  /** The gateway refused this subscription (other than by ending it). */
  readonly onError?: (error: SocketError) => void
  /** Delivery paused (`true`) or resumed (`false`), as confirmed by the gateway. */
  readonly onPausedChange?: (paused: boolean) => void
}

export interface Subscription {
  readonly lastEventId: string | undefined
  readonly paused: boolean
  readonly ended: boolean
  /** Stop delivery; nothing is lost: `resume` sends what was missed. */
  pause(): void
  resume(): void
  unsubscribe(): void
}

export interface TaskSocket {
  subscribe(options: SubscribeOptions): Subscription
  /** Ask the task's workflow to pause, resume or cancel; resolves with the gateway's `command_id`. */
  command(task: TaskRef, command: CommandKind, reason?: string): Promise<string>
  readonly status: SocketStatus
  close(): void
}

interface SubscriptionState {
  readonly sub: string
  readonly options: SubscribeOptions
  lastEventId: string | undefined
  paused: boolean
  /** Subscribed on the current connection. */
  active: boolean
  ended: boolean
}

interface PendingCommand {
  readonly frame: Record<string, unknown>
  resolve(commandId: string): void
  reject(error: SocketError): void
}

export const connectTaskSocket = (options: TaskSocketOptions = {}): TaskSocket => {
  const Socket = options.WebSocket ?? globalThis.WebSocket
  const maxRetryMs = options.maxRetryMs ?? 5000
  const subscriptions = new Map<string, SubscriptionState>()
  const commands = new Map<string, PendingCommand>()
  let socket: WebSocket | undefined
  let status: SocketStatus = "connecting"
  let attempts = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let nextSub = 0

  const setStatus = (next: SocketStatus) => {
    if (status === next) return
    status = next
    options.onStatus?.(next)
  }

  const send = (frame: Record<string, unknown>): boolean => {
    if (socket?.readyState !== Socket.OPEN) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  const sendSubscribe = (state: SubscriptionState) => {
    state.active = send(subscribeFrame({ ...state.options, key: state.sub, since: state.lastEventId }))
  }

  const finish = (state: SubscriptionState, end: TaskEnd, event?: TaskEvent) => {
    state.ended = true
    state.active = false
    subscriptions.delete(state.sub)
    state.options.onEnd?.(end, event)
  }

  const receive = (frame: ServerFrame) => {
    const state = frame.sub === undefined ? undefined : subscriptions.get(frame.sub)
    switch (frame.op) {
      case "event": {
        if (state === undefined) return
        const event = frame.event as TaskEvent
        if (event.id !== undefined) {
          if (!isAfter(event.id, state.lastEventId)) return
          state.lastEventId = event.id
        }
        state.options.onEvent(event)
        if (isTerminalType(event.type)) finish(state, EndOf[event.type], event)
        return
      }
      case "end":
        if (state !== undefined) finish(state, endOf(frame))
        return
      case "resync":
        state?.options.onResync?.({ reason: String(frame.reason), oldest: String(frame.oldest) })
        return
      case "paused":
      case "resumed":
        state?.options.onPausedChange?.(frame.op === "paused")
        return
      case "ack": {
        const pending = frame.ref === undefined ? undefined : commands.get(frame.ref)
        if (pending === undefined) return
        commands.delete(frame.ref!)
        pending.resolve(String(frame.command_id))
        return
      }
      case "error": {
        const error: SocketError = { code: String(frame.code), message: String(frame.message) }
        const pending = frame.ref === undefined ? undefined : commands.get(frame.ref)
        if (pending !== undefined) {
          commands.delete(frame.ref!)
          return pending.reject(error)
        }
        if (state === undefined) return
        // The log may come back: open the subscription again a little later.
        if (error.code === "log_unavailable" && !state.paused) {
          state.active = false
          setTimeout(() => subscriptions.has(state.sub) && !state.active && !state.paused && sendSubscribe(state), 1000)
        }
        state.options.onError?.(error)
        return
      }
    }
  }

  async function connect() {
    setStatus(attempts === 0 ? "connecting" : "reconnecting")
    // A token function is asked again for every connection: after a 4001 (expired) the socket reconnects with a fresh one.
    const token = await currentToken(options.token).catch(() => undefined)
    if (status === "closed") return
    const url = apiUrl(options.baseUrl, token, "/ws")
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
    const current = new Socket(url.toString())
    socket = current
    current.addEventListener("open", () => {
      attempts = 0
      setStatus("open")
      // A paused subscription is opened again when it resumes, from where it stopped.
      for (const state of subscriptions.values()) if (!state.paused) sendSubscribe(state)
      for (const pending of commands.values()) send(pending.frame)
    })
    current.addEventListener("message", (message) => receive(JSON.parse(String(message.data)) as ServerFrame))
    current.addEventListener("close", () => {
      if (socket !== current) return
      for (const state of subscriptions.values()) state.active = false
      if (status === "closed") return
      attempts++
      setStatus("reconnecting")
      retryTimer = setTimeout(connect, backoff(attempts, 200, maxRetryMs))
    })
  }

  void connect()

  return {
    get status() {
      return status
    },
    subscribe: (subscribeOptions) => {
      const state: SubscriptionState = {
        sub: `s${++nextSub}`,
        options: subscribeOptions,
        lastEventId: subscribeOptions.since,
        paused: false,
        active: false,
        ended: false
      }
      subscriptions.set(state.sub, state)
      sendSubscribe(state)
      return {
        get lastEventId() {
          return state.lastEventId
        },
        get paused() {
          return state.paused
        },
        get ended() {
          return state.ended
        },
        pause: () => {
          if (state.paused || state.ended) return
          state.paused = true
          if (state.active) send({ op: "pause", sub: state.sub })
        },
        resume: () => {
          if (!state.paused || state.ended) return
          state.paused = false
          if (state.active) send({ op: "resume", sub: state.sub })
          else sendSubscribe(state)
        },
        unsubscribe: () => {
          if (!subscriptions.delete(state.sub)) return
          if (state.active) send({ op: "unsubscribe", sub: state.sub })
          state.active = false
        }
      }
    },
    command: (task, command, reason) =>
      new Promise<string>((resolve, reject) => {
        const ref = newRef()
        const frame = { op: "command", ref, agentId: task.agentId, taskId: task.taskId, command, ...(reason === undefined ? {} : { reason }) }
        commands.set(ref, { frame, resolve, reject })
        send(frame)
      }),
    close: () => {
      setStatus("closed")
      clearTimeout(retryTimer)
      socket?.close(1000)
      for (const pending of commands.values()) pending.reject({ code: "closed", message: "the socket was closed" })
      commands.clear()
    }
  }
}
