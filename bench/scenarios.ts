// The bench scenarios (issue 8). Sizes are defaults; override with --<scenario>.<field>=<value>.
export type Target = "ceiling" | "gateway" | "floor" | "nchan"

export interface Scenario {
  readonly name: string
  readonly description: string
  readonly transport: "sse" | "ws"
  tasks: number
  subscribersPerTask: number
  /** rate: events/s aggregate for durationS; burst: `events` as fast as possible;
   *  history: `events` stored before clients connect; idle: nothing published. */
  readonly mode: "rate" | "burst" | "history" | "idle" | "storm"
  /** script: EVALSHA of src/log/append.lua from the runner; http: `POST …/events` on
   *  `publishConnections` keep-alive connections, one request at a time each. */
  readonly publish: "script" | "http"
  publishConnections: number
  rate: number
  durationS: number
  events: number
  payloadBytes: number
  /** Connections opened per batch, pause between batches (0 = all at once). */
  connectBatch: number
  connectPauseMs: number
  /** storm: the clients reconnect this many events behind the head (with Last-Event-ID)… */
  behind: number
  /** …plus this many clients `throttledBehindBytes` behind, reading at most `throttleBytesPerS`. */
  throttledClients: number
  throttledBehindBytes: number
  throttleBytesPerS: number
}

const NO_STORM = { behind: 0, throttledClients: 0, throttledBehindBytes: 0, throttleBytesPerS: 0 }
const SCRIPT = { publish: "script", publishConnections: 0 } as const
const HTTP = { publish: "http", publishConnections: 8 } as const

/** Each floor connection holds its own Redis subscriber; above this many it is not run. */
export const FLOOR_MAX_REDIS_CONNECTIONS = 2000

export const scenarios = (): Scenario[] => [
  {
    name: "fanout", description: "1 task, 2000 SSE subscribers, 100 events/s for 20 s, 300 B payloads",
    transport: "sse", mode: "rate", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "many", description: "2000 tasks × 1 SSE subscriber, 1000 events/s aggregate for 20 s",
    transport: "sse", mode: "rate", tasks: 2000, subscribersPerTask: 1, rate: 1000, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "burst", description: "1 task, 200 SSE subscribers, 20000 events as fast as the publisher goes",
    transport: "sse", mode: "burst", tasks: 1, subscribersPerTask: 200, rate: 0, durationS: 0, events: 20000,
    payloadBytes: 300, connectBatch: 200, connectPauseMs: 0, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "idle", description: "10000 idle SSE connections (one task each): RSS per connection",
    transport: "sse", mode: "idle", tasks: 10000, subscribersPerTask: 1, rate: 0, durationS: 0, events: 0,
    payloadBytes: 300, connectBatch: 500, connectPauseMs: 30, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "history", description: "task with 1000 stored events; 1000 clients connect with history at once",
    transport: "sse", mode: "history", tasks: 1, subscribersPerTask: 1000, rate: 0, durationS: 0, events: 1000,
    payloadBytes: 300, connectBatch: 0, connectPauseMs: 0, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "ws-fanout", description: "fanout over WebSocket: 1 task, 2000 subscribers, 100 events/s for 20 s",
    transport: "ws", mode: "rate", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...SCRIPT, ...NO_STORM,
  },
  {
    name: "fanout-http", description: "fanout published through POST …/events (8 keep-alive connections, one request at a time each)",
    transport: "sse", mode: "rate", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...HTTP, ...NO_STORM,
  },
  {
    name: "many-http", description: "2000 tasks × 1 SSE subscriber, 1000 events/s via POST …/events (8 connections)",
    transport: "sse", mode: "rate", tasks: 2000, subscribersPerTask: 1, rate: 1000, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...HTTP, ...NO_STORM,
  },
  {
    name: "reconnect-storm",
    description: "2000 SSE clients of 1 task drop at once and resume 2000 events behind (Last-Event-ID) while 100 ev/s " +
      "keep coming, + 50 clients resuming 5 MB behind at 2 MB/s",
    transport: "sse", mode: "storm", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 10, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20, ...SCRIPT,
    behind: 2000, throttledClients: 50, throttledBehindBytes: 5_000_000, throttleBytesPerS: 2_000_000,
  },
]

/** Steps every connection of the scenario must receive. */
export const stepsPerConnection = (s: Scenario): number =>
  s.mode === "rate" ? Math.floor(totalEvents(s) / s.tasks) : s.mode === "idle" ? 0 : s.events

export const totalEvents = (s: Scenario): number =>
  s.mode === "rate" || s.mode === "storm" ? Math.max(1, Math.floor(Math.round(s.rate * s.durationS) / s.tasks)) * s.tasks
    : s.mode === "idle" ? 0 : s.events

/** The figures the targets read. */
export interface Figures {
  delivered: number
  expected: number
  gaps: number
  dups: number
  p99Ms: number
  serverCpuS: number
  deliveriesPerS: number
  rssPerConnectionKB: number
  historyAllS: number
  publishedPerS: number
  ingestP99Ms: number
  cpuPerEventUs: number
  stormCaughtUpS: number
  stormThrottledS: number
  peakRssMB: number
}

/** Issue 8 and issue 17 targets for the gateway, checked against the same run's figures
 *  (the ceiling's, the gateway's own SSE fan-out, Nchan's). */
export const targetOf = (
  s: Scenario,
  gw: Figures,
  ceiling: Figures | undefined,
  sseFanout: Figures | undefined,
  nchan?: Figures,
): { text: string; met: boolean | undefined } => {
  const all = gw.delivered === gw.expected && gw.gaps === 0 && gw.dups === 0
  switch (s.name) {
    case "fanout": {
      const ratio = ceiling ? gw.serverCpuS / ceiling.serverCpuS : NaN
      return { text: "100% delivered, p99 ≤ 50 ms, CPU ≤ 1.3× ceiling", met: ceiling ? all && gw.p99Ms <= 50 && ratio <= 1.3 : undefined }
    }
    case "many": {
      const ratio = ceiling ? gw.serverCpuS / ceiling.serverCpuS : NaN
      return { text: "100% delivered, p99 ≤ 2 ms, CPU ≤ 1.3× ceiling", met: ceiling ? all && gw.p99Ms <= 2 && ratio <= 1.3 : undefined }
    }
    case "burst":
      return {
        text: "nothing lost, ≥ 0.9× the ceiling's deliveries/s, peak RSS ≤ 2× the ceiling's",
        met: ceiling ? all && gw.deliveriesPerS >= 0.9 * ceiling.deliveriesPerS && gw.peakRssMB <= 2 * ceiling.peakRssMB : undefined,
      }
    case "idle":
      return { text: "≤ 8 KB RSS per idle connection", met: gw.rssPerConnectionKB <= 8 }
    case "history":
      return { text: "all 1000 clients have all 1000 events within 5 s", met: all && gw.historyAllS <= 5 }
    case "ws-fanout": {
      const ratio = sseFanout ? gw.serverCpuS / sseFanout.serverCpuS : NaN
      return { text: "CPU ≤ the gateway's SSE fanout", met: sseFanout ? all && ratio <= 1 : undefined }
    }
    case "fanout-http":
      return {
        text: "100% delivered, p99 ≤ 50 ms, publisher keeps the rate, ingest p99 ≤ 50 ms",
        met: all && gw.p99Ms <= 50 && gw.publishedPerS >= 0.98 * s.rate && gw.ingestP99Ms <= 50,
      }
    case "many-http":
      return {
        text: "100% delivered, ≤ 60 µs server CPU per ingested event (its one delivery included), CPU ≤ 2× Nchan's",
        met: all && gw.cpuPerEventUs <= 60 && (nchan === undefined ? undefined : gw.serverCpuS <= 2 * nchan.serverCpuS),
      }
    case "reconnect-storm": {
      const linkS = s.throttledBehindBytes / s.throttleBytesPerS
      return {
        text: `nothing lost, all caught up ≤ 5 s, throttled ≤ ${(linkS + 2).toFixed(1)} s`,
        met: all && gw.stormCaughtUpS <= 5 && (s.throttledClients === 0 || gw.stormThrottledS <= linkS + 2),
      }
    }
    default:
      return { text: "", met: undefined }
  }
}
