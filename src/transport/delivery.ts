/**
 * Delivery accounting shared by the transports: events written per
 * transport, and the lag from append to the first write of each event. The
 * per-write path only adds to plain numbers; the metrics take them at scrape.
 */
import type { LogEvent } from "../events/envelope.ts"
import { labelled, Metrics, onScrape } from "../observability/metrics.ts"
import type { Transport } from "./connections.ts"
import { roundTime } from "./outbox.ts"

const delivered: Record<Transport, number> = { sse: 0, ws: 0 }
const deliveredMetric = {
  sse: labelled(Metrics.eventsDelivered, { transport: "sse" }),
  ws: labelled(Metrics.eventsDelivered, { transport: "ws" })
}
onScrape(() => {
  for (const transport of ["sse", "ws"] as const) {
    deliveredMetric[transport](delivered[transport])
    delivered[transport] = 0
  }
})
const lag = labelled(Metrics.deliveryLag, {})

/** Count `frames` events written by `transport` in one flush. */
export const countDelivered = (transport: Transport, frames: number): void => {
  delivered[transport] += frames
}

/** Record an event's lag once, the first time any connection queues it. */
export const observeLag = (event: LogEvent): void => {
  if (event.delivered || event.ms === 0) return
  event.delivered = true
  lag(Math.max(0, roundTime - event.ms) / 1000)
}
