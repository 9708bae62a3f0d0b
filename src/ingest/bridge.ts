/**
 * The broker bridge (SPEC §10.2b): the gateway reads the producers' own
 * Redis — channels matching `INGEST_PUBSUB`, and/or the stream
 * `INGEST_STREAM` — and appends what it reads to the task logs. A message is
 * CloudEvents JSON or the envelope (`message.ts`); a bad one is counted,
 * logged with the reason and skipped, and never stops the bridge.
 *
 * Pub/sub is fire-and-forget, as the producers' PUBLISH is: a message sent
 * while no gateway is subscribed, or while the log is unavailable, is lost.
 * The stream bridge is not: entries stay in the stream until a gateway has
 * stored them (`streamBridge.ts`).
 */
import { Effect } from "effect"
import { AppConfig } from "../config.ts"
import { logEffect } from "../observability/log.ts"
import { makeIngest } from "./ingest.ts"
import { followPubSub } from "./pubsubBridge.ts"
import { followStream } from "./streamBridge.ts"

/** Run the configured bridges until the scope closes; nothing when neither is set. */
export const runBridge = Effect.gen(function*() {
  const config = yield* AppConfig
  const { pubsub, stream } = config.ingest
  if (config.redis === undefined || (pubsub === undefined && stream === undefined)) return
  const ingest = yield* makeIngest(config.maxEventBytes)
  if (pubsub !== undefined) yield* followPubSub(config.redis, pubsub, ingest)
  if (stream !== undefined) yield* followStream(config.redis, { ...config.ingest, stream }, ingest)
  yield* logEffect("info", "bridge running", { pubsub, stream, group: stream === undefined ? undefined : config.ingest.group })
})
