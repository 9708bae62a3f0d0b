/**
 * Where a tab's `followTask`s get their events: a hub per gateway and
 * transport list. Without sharing, the hub owns a `Connection`. With
 * `shareAcrossTabs`, the tabs of the origin elect a leader with Web Locks
 * (`election.ts` decides, this file runs its commands): the leader's hub owns
 * the one connection and relays deliveries over a BroadcastChannel; a tab's
 * own lock, held while it lives, tells the leader when the tab is gone.
 */
import { Connection, type ConnectionOptions, type ConnectionStatus, type Deliveries } from "./connection.ts"
import { type ElectionCommand, type ElectionInput, startElection, step, type TabMessage } from "./election.ts"
import type { Resync, TaskEnd, TaskEvent } from "./events.ts"
import { type LinkSubscription, type Refusal, TRANSPORTS } from "./link.ts"
import { newRef } from "./ref.ts"

export interface HubStatus extends ConnectionStatus {
  /** Tabs sharing the connection (1 without sharing). */
  readonly tabs: number
  /** Whether this tab holds the connection. */
  readonly leader: boolean
}

/** One `followTask` of this tab, as the hub sees it. */
export interface Member {
  readonly key: string
  /** Its subscription from where it stands now. */
  subscription(): LinkSubscription
  event(event: TaskEvent): void
  end(end: TaskEnd, event?: TaskEvent): void
  resync(resync: Resync): void
  error(refusal: Refusal): void
  status(status: HubStatus): void
}

export interface Hub {
  readonly status: HubStatus
  /** Start delivery to `member` from its position. */
  join(member: Member): void
  /** Stop delivery to it (pause, hidden, close). */
  leave(key: string): void
}

type Delivery =
  | { readonly kind: "event"; readonly event: TaskEvent }
  | { readonly kind: "end"; readonly end: TaskEnd; readonly event?: TaskEvent }
  | { readonly kind: "resync"; readonly resync: Resync }
  | { readonly kind: "error"; readonly refusal: Refusal }

type ChannelMessage = TabMessage | { readonly type: "deliver"; readonly key: string; readonly delivery: Delivery }

/** This tab's members, and how a delivery reaches one (an end or an error is its last). */
const membersOf = () => {
  const members = new Map<string, Member>()
  const deliver = (key: string, delivery: Delivery): boolean => {
    const member = members.get(key)
    if (member === undefined) return false
    switch (delivery.kind) {
      case "event":
        member.event(delivery.event)
        break
      case "resync":
        member.resync(delivery.resync)
        break
      case "end":
        members.delete(key)
        member.end(delivery.end, delivery.event)
        break
      case "error":
        members.delete(key)
        member.error(delivery.refusal)
    }
    return true
  }
  return { members, deliver }
}

const deliveriesTo = (deliver: (key: string, delivery: Delivery) => void, status: (status: ConnectionStatus) => void): Deliveries => ({
  event: (key, event) => deliver(key, { kind: "event", event }),
  end: (key, end, event) => deliver(key, event === undefined ? { kind: "end", end } : { kind: "end", end, event }),
  resync: (key, resync) => deliver(key, { kind: "resync", resync }),
  error: (key, refusal) => deliver(key, { kind: "error", refusal }),
  status
})

const localHub = (options: ConnectionOptions): Hub => {
  const { members, deliver } = membersOf()
  let status: HubStatus = { state: "idle", transport: undefined, tabs: 1, leader: true }
  const connection = new Connection(
    options,
    deliveriesTo(deliver, (next) => {
      status = { ...next, tabs: 1, leader: true }
      for (const member of members.values()) member.status(status)
    })
  )
  return {
    get status() {
      return status
    },
    join: (member) => {
      members.set(member.key, member)
      connection.add(member.subscription())
    },
    leave: (key) => {
      members.delete(key)
      connection.remove(key)
    }
  }
}

const sharedHub = (name: string, options: ConnectionOptions): Hub => {
  const self = newRef()
  const channel = new BroadcastChannel(name)
  const locks = navigator.locks
  const { members, deliver } = membersOf()
  const never = () => new Promise<void>(() => undefined)
  let election = startElection(self)
  let connection: Connection | undefined
  let status: HubStatus = { state: "connecting", transport: undefined, tabs: 1, leader: false }
  /** Messages wait until this tab holds its own lock, so a leader never takes it for gone. */
  let outbox: Array<TabMessage> | undefined = []

  const post = (message: ChannelMessage) => (outbox === undefined || message.type === "deliver" ? channel.postMessage(message) : outbox.push(message))

  const run = (input: ElectionInput) => {
    const [next, commands] = step(election, input)
    election = next
    for (const command of commands) execute(command)
  }

  const execute = (command: ElectionCommand) => {
    switch (command.type) {
      case "post":
        return post(command.message)
      case "subscribe":
        return connection?.add(command.subscription)
      case "unsubscribe":
        return connection?.remove(command.key)
      case "watch_tab":
        return void locks.request(`${name}:tab:${command.tab}`, () => run({ type: "tab_gone", tab: command.tab }))
      case "rejoin":
        for (const member of members.values()) run({ type: "join", subscription: member.subscription() })
        return
      case "report":
        status = { ...command.status, tabs: command.tabs, leader: election.role === "leader" }
        for (const member of members.values()) member.status(status)
    }
  }

  /** The leader delivers to its own members directly and relays the rest. */
  const relay = (key: string, delivery: Delivery) => {
    if (delivery.kind === "end" || delivery.kind === "error") run({ type: "ended", key })
    if (!deliver(key, delivery)) post({ type: "deliver", key, delivery })
  }

  channel.addEventListener("message", (message: MessageEvent<ChannelMessage>) => {
    const data = message.data
    if (data.type === "deliver") deliver(data.key, data.delivery)
    else run({ type: "received", message: data })
  })

  void locks.request(`${name}:tab:${self}`, () => {
    const queued = outbox ?? []
    outbox = undefined
    post({ type: "hello", tab: self })
    for (const message of queued) post(message)
    void locks.request(`${name}:leader`, () => {
      connection = new Connection(options, deliveriesTo(relay, (next) => run({ type: "status", status: next })))
      run({ type: "elected" })
      return never()
    })
    return never()
  })

  return {
    get status() {
      return status
    },
    join: (member) => {
      members.set(member.key, member)
      run({ type: "join", subscription: member.subscription() })
    },
    leave: (key) => {
      members.delete(key)
      run({ type: "leave", key })
    }
  }
}

/** Whether this runtime can share a connection between tabs. */
export const canShareAcrossTabs = (): boolean =>
  typeof BroadcastChannel === "function" && typeof (globalThis as { navigator?: Navigator }).navigator?.locks?.request === "function"

const hubs = new Map<string, Hub>()

/** The hub of this tab for a gateway, its transports and whether it is shared: the first caller's options make it. */
export const hubFor = (options: ConnectionOptions, share: boolean): Hub => {
  const origin = options.baseUrl ?? (globalThis as { location?: { origin?: string } }).location?.origin ?? ""
  const name = `taskstream:${origin}:${(options.transports ?? TRANSPORTS).join(",")}`
  const id = `${name}:${share ? "shared" : "local"}`
  let hub = hubs.get(id)
  if (hub === undefined) {
    hub = share ? sharedHub(name, options) : localHub(options)
    hubs.set(id, hub)
  }
  return hub
}
