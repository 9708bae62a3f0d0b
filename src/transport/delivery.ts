/**
 * Delivery accounting shared by the transports: events written per
 * transport, and the lag from append to the first write of each event.
 */
import type { LogEvent } from "../events/envelope.ts"
import { labelled, Metrics } from "../observability/metrics.ts"
import type { Transport } from "./connections.ts"
import { roundTime } from "./outbox.ts"

const delivered = {
  sse: labelled(Metrics.eventsDelivered, { transport: "sse" }),
  ws: labelled(Metrics.eventsDelivered, { transport: "ws" })
}
const lag = labelled(Metrics.deliveryLag, {})
const observed = new WeakSet<LogEvent>()

/** Count `frames` events written by `transport` in one flush. */
export const countDelivered = (transport: Transport, frames: number): void => delivered[transport](frames)

/** Record an event's lag once, the first time any connection queues it. */
export const observeLag = (event: LogEvent): void => {
  if (event.ms === 0 || observed.has(event)) return
  observed.add(event)
  lag(Math.max(0, roundTime - event.ms) / 1000)
}
