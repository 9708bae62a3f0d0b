/**
 * WebSocket topics (issue 17): the live events of subscriptions in step — same
 * task, agent, type filter and `sub` label, at the same position — sent once
 * for all of them through the runtime's pub/sub (Bun's `server.publish`: one
 * frame, encoded once, written to every subscribed socket natively) instead of
 * once per socket.
 *
 * A subscription joins its topic once it is live and in step with the topic's
 * members (asked between deliveries: the topic's first member is the reference)
 * and leaves it the moment it is not live any more (paused, catching up after a
 * gap, ended, closed): from then on its socket gets its frames one by one again.
 * Every member still runs its own delivery decisions; a member that passes an
 * event on publishes it, and the others, in step, pass on the same event, which
 * the topic has already published. A runtime without pub/sub (Deno) has no
 * topics: every subscription stays on its socket's own frames.
 */
import type { LogEvent } from "../events/envelope.ts"
import type { Subscription } from "../stream/TaskStream.ts"
import type { Writes } from "./outbox.ts"
import type { EventFrames } from "./websocket.ts"

/** The runtime's pub/sub: publish one text frame to every socket subscribed to `topic`. */
export type Publish = (topic: string, frame: string) => void

/** A subscription on a topic, as the topic sees it. */
export interface TopicMember {
  /** Members compare positions through their subscriptions. */
  readonly subscription: Subscription
  /** Close the member's socket when its client holds more than CLIENT_BUFFER_BYTES unsent (a slow consumer). */
  checkBacklog(): void
}

/** The topic of a subscription shape: the task, its agent, the filter's key and the `sub` label. */
export const topicKey = (agentId: string, taskId: string, filterKey: string, sub: string): string =>
  `${agentId}\u0000${taskId}\u0000${filterKey}\u0000${sub}`

export class Topic {
  /** The subscriptions on the topic, in joining order: the first is the reference for those joining. */
  readonly members = new Set<TopicMember>()
  private last: LogEvent | undefined

  constructor(
    readonly key: string,
    private readonly prefix: string,
    private readonly owner: WsTopics
  ) {}

  /** Publish `event` to the topic's sockets, once however many members pass it on. */
  send(event: LogEvent): void {
    if (event === this.last) return
    this.last = event
    this.owner.publish(this.key, this.owner.frames.of(this.prefix, event))
    this.owner.writes.countDelivered("ws", this.members.size)
    this.owner.published(this)
  }

  leave(member: TopicMember): void {
    if (!this.members.delete(member)) return
    this.owner.count(-1)
    if (this.members.size === 0) this.owner.forget(this)
  }
}

export class WsTopics {
  private readonly topics = new Map<string, Topic>()
  private members = 0
  /** Topics that published since the last backlog check, and whether one is scheduled. */
  private readonly unchecked = new Set<Topic>()
  private checkScheduled = false

  constructor(
    readonly publish: Publish,
    readonly frames: EventFrames,
    readonly writes: Writes,
    /** Sets the gauge of subscriptions on topics. */
    private readonly gauge: (members: number) => void
  ) {}

  /** Put `member` on the topic `key` when it is in step with the members already there; undefined when not (yet). */
  join(key: string, prefix: string, member: TopicMember): Topic | undefined {
    let topic = this.topics.get(key)
    if (topic === undefined) {
      topic = new Topic(key, prefix, this)
      this.topics.set(key, topic)
    } else {
      const reference = topic.members.values().next().value
      if (reference !== undefined && !member.subscription.joinStep(reference.subscription)) return undefined
    }
    topic.members.add(member)
    this.count(1)
    return topic
  }

  /**
   * Slow clients on topics are checked once per event-loop turn in which their topics published,
   * after the turn (when the runtime has written what it could and counts the rest): every socket
   * on them, whatever number of topics it is on. The runtime's own limit is far above CLIENT_BUFFER_BYTES
   * (see main.bun.ts), so the check closes a slow client with 4008 before the runtime would.
   */
  published(topic: Topic): void {
    this.unchecked.add(topic)
    if (this.checkScheduled) return
    this.checkScheduled = true
    setImmediate(this.checkBacklogs)
  }

  private readonly checkBacklogs = (): void => {
    this.checkScheduled = false
    const topics = [...this.unchecked]
    this.unchecked.clear()
    for (const topic of topics) for (const member of [...topic.members]) member.checkBacklog()
  }

  count(change: number): void {
    this.gauge((this.members += change))
  }

  forget(topic: Topic): void {
    if (this.topics.get(topic.key) === topic) this.topics.delete(topic.key)
  }
}
