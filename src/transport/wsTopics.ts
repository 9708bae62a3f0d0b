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
  /** Bytes its client may hold unsent (CLIENT_BUFFER_BYTES). */
  readonly capacity: number
  /** Close the member's socket when its client holds more than `capacity` unsent (a slow consumer). */
  checkBacklog(): void
}

/** The topic of a subscription shape: the task, its agent, the filter's key and the `sub` label. */
export const topicKey = (agentId: string, taskId: string, filterKey: string, sub: string): string =>
  `${agentId}\u0000${taskId}\u0000${filterKey}\u0000${sub}`

export class Topic {
  /** The subscriptions on the topic, in joining order: the first is the reference for those joining. */
  readonly members = new Set<TopicMember>()
  private last: LogEvent | undefined
  /** Published since the members' backlogs were last checked (characters). */
  private unchecked = 0

  constructor(
    readonly key: string,
    private readonly prefix: string,
    private readonly owner: WsTopics,
    /** Check the backlogs every half a client buffer published: nobody passes the runtime's limit (twice the buffer) unchecked. */
    private readonly checkEvery: number
  ) {}

  /** Publish `event` to the topic's sockets, once however many members pass it on. */
  send(event: LogEvent): void {
    if (event === this.last) return
    this.last = event
    const frame = this.owner.frames.of(this.prefix, event)
    this.owner.publish(this.key, frame)
    this.owner.writes.countDelivered("ws", this.members.size)
    this.unchecked += frame.length
    if (this.unchecked < this.checkEvery) return
    this.unchecked = 0
    for (const member of [...this.members]) member.checkBacklog()
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
      topic = new Topic(key, prefix, this, member.capacity / 2)
      this.topics.set(key, topic)
    } else {
      const reference = topic.members.values().next().value
      if (reference !== undefined && !member.subscription.joinStep(reference.subscription)) return undefined
    }
    topic.members.add(member)
    this.count(1)
    return topic
  }

  count(change: number): void {
    this.gauge((this.members += change))
  }

  forget(topic: Topic): void {
    if (this.topics.get(topic.key) === topic) this.topics.delete(topic.key)
  }

}
