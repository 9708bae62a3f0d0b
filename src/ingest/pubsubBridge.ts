/**
 * The pub/sub side of the bridge (SPEC §10.2b): `PSUBSCRIBE INGEST_PUBSUB`
 * on the gateway's Redis. Every instance sees every message; the
 * idempotency key (CloudEvents `id`+`source`, the message's key, else a hash
 * of channel and text) makes the log hold it once. Messages of one task are
 * appended one after the other, in the order they arrived, so each instance
 * appends them in order and the first to append a message stores it.
 */
import { Effect, type Scope } from "effect"
import { closeClient, createClient } from "../log/redisTarget.ts"
import { type RedisTarget } from "../redisUrl.ts"
import { type Ingest, isOutcome } from "./ingest.ts"
import { derivedKey } from "./published.ts"

export const followPubSub = (target: RedisTarget, pattern: string, ingest: Ingest): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // Not fail-fast: the subscription is re-established after every reconnect.
      const subscriber = createClient(target, { failFast: false })
      subscriber.on("error", () => {})
      /** The last append queued per task: the next message of that task waits for it. */
      const tails = new Map<string, Promise<unknown>>()
      subscriber.on("pmessage", (_pattern: string, channel: string, text: string) => {
        const parsed = ingest.parse("pubsub", text, () => derivedKey("msg", channel, text), { channel })
        if (isOutcome(parsed)) return
        const key = `${parsed.task.agentId}/${parsed.task.taskId}`
        const tail = (tails.get(key) ?? Promise.resolve()).then(() => ingest.append("pubsub", parsed, { channel }))
        tails.set(key, tail)
        void tail.finally(() => {
          if (tails.get(key) === tail) tails.delete(key)
        })
      })
      void subscriber.psubscribe(pattern).catch(() => undefined)
      return subscriber
    }),
    (subscriber) => Effect.promise(() => closeClient(subscriber))
  ).pipe(Effect.asVoid)
