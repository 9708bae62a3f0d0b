/**
 * `followTask` (SPEC §12): follow one task over whichever transport gets
 * through — WebSocket, else SSE, in the order given — from the last delivered
 * id after any switch, drop or expired token, with one connection shared by
 * all the tabs of the origin (`shareAcrossTabs`) and, optionally, no
 * connection while the tab is hidden (`closeWhenHidden`). Aborts, hidden tabs
 * and offline periods are states (`onState`), not errors.
 */
import type { ConnectionOptions, ConnectionState } from "./connection.ts"
import type { FollowCallbacks } from "./events.ts"
import type { Refusal, TransportName } from "./link.ts"
import { Position } from "./position.ts"
import { newRef } from "./ref.ts"
import { canShareAcrossTabs, type HubStatus, hubFor, type Member } from "./tabs.ts"
import type { TaskRef } from "./url.ts"

export type FollowState = "connecting" | "open" | "fallback" | "hidden" | "offline" | "closed"

export interface FollowOptions extends TaskRef, FollowCallbacks, ConnectionOptions {
  /** The gateway refused this task (4xx, or a token it refuses and that cannot be renewed): not retried. */
  readonly onError?: (error: Refusal) => void
  readonly onState?: (state: FollowState) => void
  /** The transport delivering now, each time it changes. */
  readonly onTransport?: (transport: TransportName) => void
  /** The number of tabs sharing the connection, each time it changes. */
  readonly onTabs?: (tabs: number) => void
  /** One connection for all tabs of this origin (default: true where BroadcastChannel and Web Locks exist). */
  readonly shareAcrossTabs?: boolean
  /** Close this tab's share of the connection after it has been hidden this long (ms); resume when visible. */
  readonly closeWhenHidden?: number
}

export interface Follow {
  /** The id of the last durable event delivered. */
  readonly lastEventId: string | undefined
  readonly state: FollowState
  readonly transport: TransportName | undefined
  /** Tabs sharing the connection (1 without sharing). */
  readonly tabs: number
  /** Whether this tab holds the connection (always, without sharing). */
  readonly leading: boolean
  readonly paused: boolean
  /** Stop delivery to this tab; nothing is lost: `resume` delivers what was missed. */
  pause(): void
  resume(): void
  /** Stop for good. */
  close(): void
}

const followState = (state: ConnectionState): FollowState | undefined =>
  state === "idle" ? undefined : state

export const followTask = (options: FollowOptions): Follow => {
  const share = options.shareAcrossTabs ?? canShareAcrossTabs()
  if (share && !canShareAcrossTabs()) throw new Error("taskstream client: shareAcrossTabs needs BroadcastChannel and navigator.locks")
  const hub = hubFor(options, share)
  const key = newRef()
  const position = new Position(options.since)
  let state: FollowState = "connecting"
  let transport: TransportName | undefined
  let tabs = 0
  let paused = false
  let hidden = false
  let closed = false
  let joined = false
  let hideTimer: ReturnType<typeof setTimeout> | undefined

  const setState = (next: FollowState) => {
    if (state === next) return
    state = next
    options.onState?.(next)
  }

  const report = (status: HubStatus) => {
    if (closed || hidden) return
    if (status.tabs !== tabs) {
      tabs = status.tabs
      options.onTabs?.(tabs)
    }
    if (status.state === "open" && status.transport !== undefined && status.transport !== transport) {
      transport = status.transport
      options.onTransport?.(transport)
    }
    const next = followState(status.state)
    if (next !== undefined) setState(next)
  }

  const finish = () => {
    closed = true
    joined = false
    clearTimeout(hideTimer)
    document?.removeEventListener("visibilitychange", visibility)
    setState("closed")
  }

  const member: Member = {
    key,
    subscription: () => ({
      key,
      agentId: options.agentId,
      taskId: options.taskId,
      types: options.types,
      ...(position.lastEventId !== undefined ? { since: position.lastEventId } : { history: options.history })
    }),
    event: (event) => {
      if (!closed && position.accept(event)) options.onEvent(event)
    },
    end: (end, event) => {
      if (closed) return
      finish()
      options.onEnd?.(end, event)
    },
    resync: (resync) => !closed && options.onResync?.(resync),
    error: (refusal) => {
      if (closed) return
      finish()
      options.onError?.(refusal)
    },
    status: report
  }

  /** Joined upstream exactly while neither paused, hidden nor closed. */
  const sync = () => {
    const active = !paused && !hidden && !closed
    if (active && !joined) {
      joined = true
      hub.join(member)
      report(hub.status)
    } else if (!active && joined) {
      joined = false
      hub.leave(key)
    }
  }

  const document = (globalThis as { document?: Document }).document
  const visibility = () => {
    if (options.closeWhenHidden === undefined || document === undefined || closed) return
    clearTimeout(hideTimer)
    if (document.visibilityState === "hidden") {
      hideTimer = setTimeout(() => {
        hidden = true
        sync()
        setState("hidden")
      }, options.closeWhenHidden)
    } else if (hidden) {
      hidden = false
      setState("connecting")
      sync()
    }
  }
  document?.addEventListener("visibilitychange", visibility)

  options.onState?.(state)
  sync()
  return {
    get lastEventId() {
      return position.lastEventId
    },
    get state() {
      return state
    },
    get transport() {
      return transport
    },
    get tabs() {
      return tabs
    },
    get leading() {
      return hub.status.leader
    },
    get paused() {
      return paused
    },
    pause: () => {
      paused = true
      sync()
    },
    resume: () => {
      paused = false
      sync()
    },
    close: () => {
      if (closed) return
      const wasJoined = joined
      finish()
      if (wasJoined) hub.leave(key)
    }
  }
}
