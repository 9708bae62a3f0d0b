/**
 * Every metric the gateway exports at `GET /metrics` (Prometheus text), in
 * one table; docs/metrics.md lists the same names. Hot paths update them
 * with `updateUnsafe` — a plain function call, no Effect per event.
 *
 * Each gateway counts in its own registry (the `GatewayMetrics` service): two
 * gateways in one process share no series.
 */
import { Context, Effect, Layer, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"

export const Metrics = {
  connections: Metric.gauge("taskstream_connections", { description: "Open streaming connections, by transport" }),
  subscriptions: Metric.gauge("taskstream_subscriptions", { description: "Task subscriptions open on this instance (one per SSE stream, many per WebSocket)" }),
  wsTopicSubscriptions: Metric.gauge("taskstream_ws_topic_subscriptions", {
    description: "WebSocket subscriptions whose live events come through a runtime topic (Bun pub/sub: one frame for all the sockets in step)"
  }),
  liveChannels: Metric.gauge("taskstream_live_channels", { description: "Task live channels this instance is subscribed to" }),
  eventsAppended: Metric.counter("taskstream_events_appended_total", { description: "Events appended through this instance (ingest and in-process publishers)", incremental: true }),
  eventsDelivered: Metric.counter("taskstream_events_delivered_total", { description: "Events written to clients, by transport", incremental: true }),
  deliveryLag: Metric.histogram("taskstream_delivery_lag_seconds", {
    description: "From a live event's append (its id's time) to its dispatch to this instance's clients, whose writes follow in the same event-loop turn",
    boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  }),
  disconnects: Metric.counter("taskstream_disconnects_total", { description: "Connections closed by the server, by reason (slow_consumer, token_expired, shutdown, …)", incremental: true }),
  limitRejections: Metric.counter("taskstream_limit_rejections_total", { description: "Requests refused by a limit, by limit", incremental: true }),
  authFailures: Metric.counter("taskstream_auth_failures_total", { description: "Requests refused by authentication (401) or scope (403), by reason", incremental: true }),
  eventsDropped: Metric.counter("taskstream_events_dropped_total", {
    description: "Events not delivered, by reason: other_agent (an event for the same task id under another agent, dropped per subscription it reached), malformed (a live message not in the append script's format)",
    incremental: true
  }),
  redisReconnects: Metric.counter("taskstream_redis_reconnects_total", { description: "Reconnects of this instance's Redis subscriber", incremental: true }),
  redisSubscribeFailures: Metric.counter("taskstream_redis_subscribe_failures_total", {
    description: "SUBSCRIBE/SSUBSCRIBE commands Redis refused (e.g. an ACL without the channel's permission); each is retried",
    incremental: true
  }),
  ingestMessages: Metric.counter("taskstream_ingest_messages_total", {
    description: "Broker bridge messages, by source (pubsub, stream) and outcome (accepted, rejected, failed)",
    incremental: true
  })
} as const

type Attributes = Record<string, string>

export interface MetricsRecorder {
  /** Add `value` to a counter (or set a gauge), labelled with `attributes`. */
  record<I>(metric: Metric.Metric<I, unknown>, value: I, attributes?: Attributes): void
  /** A labelled metric handle for hot paths, created once. */
  labelled<I>(metric: Metric.Metric<I, unknown>, attributes: Attributes): (value: I) => void
  /** The registry as Prometheus text. */
  readonly render: Effect.Effect<string>
  /** Export every series from start-up (at zero), so dashboards and alerts see them before traffic. */
  init(transports: ReadonlyArray<string>): void
}

/** A recorder on a registry of its own. */
export const makeMetrics = (): MetricsRecorder => {
  const registry: Metric.MetricRegistry = new Map()
  const context = Context.make(Metric.MetricRegistry, registry) as Context.Context<never>
  const record = <I>(metric: Metric.Metric<I, unknown>, value: I, attributes?: Attributes): void => {
    ;(attributes === undefined ? metric : Metric.withAttributes(metric, attributes)).updateUnsafe(value, context)
  }
  return {
    record,
    labelled: <I>(metric: Metric.Metric<I, unknown>, attributes: Attributes) => {
      // What `Metric.withAttributes` does on every update (a new Context with the attributes,
      // ≈ 6 µs), done once: the handle updates the metric in a context that already has them.
      const labelledContext = Context.add(context, Metric.CurrentMetricAttributes, { ...attributes })
      return (value: I) => metric.updateUnsafe(value, labelledContext)
    },
    render: PrometheusMetrics.format().pipe(Effect.provideService(Metric.MetricRegistry, registry)),
    init: (transports) => {
      for (const transport of transports) {
        record(Metrics.connections, 0, { transport })
        record(Metrics.eventsDelivered, 0, { transport })
      }
      for (const metric of [Metrics.subscriptions, Metrics.wsTopicSubscriptions, Metrics.liveChannels, Metrics.eventsAppended, Metrics.redisReconnects, Metrics.redisSubscribeFailures]) {
        record(metric, 0)
      }
      for (const source of ["pubsub", "stream"]) {
        for (const outcome of ["accepted", "rejected", "failed"]) record(Metrics.ingestMessages, 0, { source, outcome })
      }
      for (const reason of ["other_agent", "malformed"]) record(Metrics.eventsDropped, 0, { reason })
    }
  }
}

/** This gateway's metrics. */
export class GatewayMetrics extends Context.Service<GatewayMetrics, MetricsRecorder>()("taskstream/GatewayMetrics") {
  static readonly layer = Layer.sync(GatewayMetrics, makeMetrics)
}
