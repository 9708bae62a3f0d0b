// The bench scenarios (issue 8). Sizes are defaults; override with --<scenario>.<field>=<value>.
export type Target = "ceiling" | "gateway" | "floor"

export interface Scenario {
  readonly name: string
  readonly description: string
  readonly transport: "sse" | "ws"
  tasks: number
  subscribersPerTask: number
  /** rate: events/s aggregate for durationS; burst: `events` as fast as possible;
   *  history: `events` stored before clients connect; idle: nothing published. */
  readonly mode: "rate" | "burst" | "history" | "idle"
  rate: number
  durationS: number
  events: number
  payloadBytes: number
  /** Connections opened per batch, pause between batches (0 = all at once). */
  connectBatch: number
  connectPauseMs: number
}

/** Each floor connection holds its own Redis subscriber; above this many it is not run. */
export const FLOOR_MAX_REDIS_CONNECTIONS = 2000

export const scenarios = (): Scenario[] => [
  {
    name: "fanout", description: "1 task, 2000 SSE subscribers, 100 events/s for 20 s, 300 B payloads",
    transport: "sse", mode: "rate", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20,
  },
  {
    name: "many", description: "2000 tasks × 1 SSE subscriber, 1000 events/s aggregate for 20 s",
    transport: "sse", mode: "rate", tasks: 2000, subscribersPerTask: 1, rate: 1000, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20,
  },
  {
    name: "burst", description: "1 task, 200 SSE subscribers, 20000 events as fast as the publisher goes",
    transport: "sse", mode: "burst", tasks: 1, subscribersPerTask: 200, rate: 0, durationS: 0, events: 20000,
    payloadBytes: 300, connectBatch: 200, connectPauseMs: 0,
  },
  {
    name: "idle", description: "10000 idle SSE connections (one task each): RSS per connection",
    transport: "sse", mode: "idle", tasks: 10000, subscribersPerTask: 1, rate: 0, durationS: 0, events: 0,
    payloadBytes: 300, connectBatch: 500, connectPauseMs: 30,
  },
  {
    name: "history", description: "task with 1000 stored events; 1000 clients connect with history at once",
    transport: "sse", mode: "history", tasks: 1, subscribersPerTask: 1000, rate: 0, durationS: 0, events: 1000,
    payloadBytes: 300, connectBatch: 0, connectPauseMs: 0,
  },
  {
    name: "ws-fanout", description: "fanout over WebSocket: 1 task, 2000 subscribers, 100 events/s for 20 s",
    transport: "ws", mode: "rate", tasks: 1, subscribersPerTask: 2000, rate: 100, durationS: 20, events: 0,
    payloadBytes: 300, connectBatch: 250, connectPauseMs: 20,
  },
]

/** Steps every connection of the scenario must receive. */
export const stepsPerConnection = (s: Scenario): number =>
  s.mode === "rate" ? Math.floor(totalEvents(s) / s.tasks) : s.mode === "idle" ? 0 : s.events

export const totalEvents = (s: Scenario): number =>
  s.mode === "rate" ? Math.max(1, Math.floor(Math.round(s.rate * s.durationS) / s.tasks)) * s.tasks
    : s.mode === "idle" ? 0 : s.events

/** Issue 8 targets for the gateway, checked against the same run's figures. */
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
}

export const targetOf = (
  scenario: string,
  gw: Figures,
  ceiling: Figures | undefined,
  sseFanout: Figures | undefined,
): { text: string; met: boolean | undefined } => {
  const all = gw.delivered === gw.expected && gw.gaps === 0 && gw.dups === 0
  switch (scenario) {
    case "fanout": {
      const ratio = ceiling ? gw.serverCpuS / ceiling.serverCpuS : NaN
      return { text: "100% delivered, p99 ≤ 50 ms, CPU ≤ 1.3× ceiling", met: ceiling ? all && gw.p99Ms <= 50 && ratio <= 1.3 : undefined }
    }
    case "many":
      return { text: "100% delivered, p99 ≤ 2 ms", met: all && gw.p99Ms <= 2 }
    case "burst":
      return { text: "nothing lost, ≥ 1M deliveries/s", met: all && gw.deliveriesPerS >= 1_000_000 }
    case "idle":
      return { text: "≤ 10 KB RSS per idle connection", met: gw.rssPerConnectionKB <= 10 }
    case "history":
      return { text: "all 1000 clients have all 1000 events within 5 s", met: all && gw.historyAllS <= 5 }
    case "ws-fanout": {
      const ratio = sseFanout ? gw.serverCpuS / sseFanout.serverCpuS : NaN
      return { text: "CPU ≤ 1.3× SSE fanout (gateway)", met: sseFanout ? all && ratio <= 1.3 : undefined }
    }
    default:
      return { text: "", met: undefined }
  }
}
