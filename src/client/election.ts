/**
 * Sharing one connection between the tabs of an origin (SPEC §12), as a pure
 * state machine: `step(election, input)` returns the next state and the
 * commands to run (post on the BroadcastChannel, subscribe upstream, watch a
 * tab's lock, …); `tabs.ts` runs them with the browser's Web Locks and
 * BroadcastChannel. The tab holding the leader lock owns the connection; every
 * other tab sends it the subscriptions of its `followTask`s and gets their
 * deliveries back. When a new leader is elected, every tab sends its
 * subscriptions again, each from its own last delivered id.
 */
import type { ConnectionStatus } from "./connection.ts"
import type { LinkSubscription } from "./link.ts"

export type TabMessage =
  /** A tab joined the channel. */
  | { readonly type: "hello"; readonly tab: string }
  /** The leader's announcement: who leads, how many tabs share its connection, and its state. */
  | { readonly type: "leader"; readonly tab: string; readonly tabs: number; readonly status: ConnectionStatus }
  | { readonly type: "follow"; readonly tab: string; readonly subscription: LinkSubscription }
  | { readonly type: "unfollow"; readonly tab: string; readonly key: string }

export interface Election {
  readonly role: "waiting" | "leader" | "follower"
  readonly self: string
  readonly leader: string | undefined
  /** Leader only: every tab sharing the connection (itself included), with its subscription keys. */
  readonly tabs: ReadonlyMap<string, ReadonlySet<string>>
  /** Leader only: its connection's status. */
  readonly status: ConnectionStatus
}

export type ElectionInput =
  /** This tab got the leader lock. */
  | { readonly type: "elected" }
  | { readonly type: "received"; readonly message: TabMessage }
  /** Leader only: a tab's lock was released (the tab closed). */
  | { readonly type: "tab_gone"; readonly tab: string }
  /** A `followTask` of this tab starts (or starts again) delivery. */
  | { readonly type: "join"; readonly subscription: LinkSubscription }
  | { readonly type: "leave"; readonly key: string }
  /** Leader only: a subscription ended upstream (terminal event, refusal). */
  | { readonly type: "ended"; readonly key: string }
  /** Leader only: its connection's status changed. */
  | { readonly type: "status"; readonly status: ConnectionStatus }

export type ElectionCommand =
  | { readonly type: "post"; readonly message: TabMessage }
  | { readonly type: "subscribe"; readonly subscription: LinkSubscription }
  | { readonly type: "unsubscribe"; readonly key: string }
  /** Learn when this tab closes (its lock is released). */
  | { readonly type: "watch_tab"; readonly tab: string }
  /** Join again every subscription of this tab (a new leader needs them). */
  | { readonly type: "rejoin" }
  /** What this tab's `followTask`s report (state, transport, number of tabs). */
  | { readonly type: "report"; readonly status: ConnectionStatus; readonly tabs: number }

export const startElection = (self: string): Election => ({
  role: "waiting",
  self,
  leader: undefined,
  tabs: new Map(),
  status: { state: "connecting", transport: undefined }
})

const announce = (election: Election): Array<ElectionCommand> => [
  { type: "post", message: { type: "leader", tab: election.self, tabs: election.tabs.size, status: election.status } },
  { type: "report", status: election.status, tabs: election.tabs.size }
]

const withTab = (tabs: ReadonlyMap<string, ReadonlySet<string>>, tab: string, keys: ReadonlySet<string>) =>
  new Map(tabs).set(tab, keys)

/** The leader learns of a tab (and watches it) the first time it hears from it. */
const meet = (election: Election, tab: string): [Election, Array<ElectionCommand>] =>
  election.tabs.has(tab)
    ? [election, []]
    : [{ ...election, tabs: withTab(election.tabs, tab, new Set()) }, [{ type: "watch_tab", tab }]]

const leaderReceives = (election: Election, message: TabMessage): [Election, Array<ElectionCommand>] => {
  switch (message.type) {
    case "hello": {
      const [met, watch] = meet(election, message.tab)
      return [met, [...watch, ...announce(met)]]
    }
    case "follow": {
      const [met, watch] = meet(election, message.tab)
      const keys = met.tabs.get(message.tab)!
      const key = message.subscription.key
      if (keys.has(key)) return [met, watch]
      const next = { ...met, tabs: withTab(met.tabs, message.tab, new Set(keys).add(key)) }
      return [next, [...watch, { type: "subscribe", subscription: message.subscription }, ...(watch.length > 0 ? announce(next) : [])]]
    }
    case "unfollow": {
      const keys = election.tabs.get(message.tab)
      if (keys === undefined || !keys.has(message.key)) return [election, []]
      const rest = new Set(keys)
      rest.delete(message.key)
      return [{ ...election, tabs: withTab(election.tabs, message.tab, rest) }, [{ type: "unsubscribe", key: message.key }]]
    }
    case "leader":
      // Web Locks grant the leader lock to one tab at a time.
      return [election, []]
  }
}

const forget = (election: Election, key: string): Election => {
  for (const [tab, keys] of election.tabs) {
    if (!keys.has(key)) continue
    const rest = new Set(keys)
    rest.delete(key)
    return { ...election, tabs: withTab(election.tabs, tab, rest) }
  }
  return election
}

export const step = (election: Election, input: ElectionInput): [Election, Array<ElectionCommand>] => {
  const leading = election.role === "leader"
  switch (input.type) {
    case "elected": {
      const next: Election = { ...election, role: "leader", leader: election.self, tabs: new Map([[election.self, new Set<string>()]]) }
      return [next, [{ type: "rejoin" }, ...announce(next)]]
    }
    case "received": {
      if (leading) return leaderReceives(election, input.message)
      const message = input.message
      if (message.type !== "leader") return [election, []]
      const report: ElectionCommand = { type: "report", status: message.status, tabs: message.tabs }
      if (election.leader === message.tab) return [election, [report]]
      return [{ ...election, role: "follower", leader: message.tab }, [{ type: "rejoin" }, report]]
    }
    case "tab_gone": {
      const keys = election.tabs.get(input.tab)
      if (!leading || keys === undefined) return [election, []]
      const tabs = new Map(election.tabs)
      tabs.delete(input.tab)
      const next = { ...election, tabs }
      return [next, [...[...keys].map((key): ElectionCommand => ({ type: "unsubscribe", key })), ...announce(next)]]
    }
    case "join":
      return leading
        ? leaderReceives(election, { type: "follow", tab: election.self, subscription: input.subscription })
        : [election, [{ type: "post", message: { type: "follow", tab: election.self, subscription: input.subscription } }]]
    case "leave":
      return leading
        ? leaderReceives(election, { type: "unfollow", tab: election.self, key: input.key })
        : [election, [{ type: "post", message: { type: "unfollow", tab: election.self, key: input.key } }]]
    case "ended":
      return [leading ? forget(election, input.key) : election, []]
    case "status": {
      if (!leading) return [election, []]
      const next = { ...election, status: input.status }
      return [next, announce(next)]
    }
  }
}
