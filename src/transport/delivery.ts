/**
 * Delivery accounting shared by the transports: events written per
 * transport. The per-write path only adds to plain numbers; the metric takes
 * them at scrape.
 */
import { labelled, Metrics, onScrape } from "../observability/metrics.ts"
import type { Transport } from "./connections.ts"

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
/** Count `frames` events written by `transport` in one flush. */
export const countDelivered = (transport: Transport, frames: number): void => {
  delivered[transport] += frames
}
