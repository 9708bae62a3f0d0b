// `bun bench/wait-latency.ts [requests=300]` — what REDIS_WAIT_REPLICAS=1 costs an ingest request.
//
// Starts the tests' Sentinel-managed Redis (master + replica + 3 sentinels, loopback) and two gateways
// on it, one without WAIT and one with REDIS_WAIT_REPLICAS=1, then sends `requests` single-event
// POSTs to each, one at a time (so the figure is the latency of one append, not a throughput), and
// prints p50/p90/p99 per gateway. Bounded: two gateways, sequential requests, loopback only.
import { type Gateway, startGateway } from "../tests/support/gateway.ts"
import { startRedisSentinel } from "../tests/support/redisSentinel.ts"

const requests = Number(process.argv[2] ?? 300)
const sentinel = await startRedisSentinel()
const gateways: Record<string, Gateway> = {}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

try {
  gateways["REDIS_WAIT_REPLICAS=0"] = await startGateway({ REDIS_URL: sentinel.url })
  gateways["REDIS_WAIT_REPLICAS=1"] = await startGateway({ REDIS_URL: sentinel.url, REDIS_WAIT_REPLICAS: "1" })
  const rows: Array<Record<string, string>> = []
  for (const [name, gateway] of Object.entries(gateways)) {
    const url = `${gateway.url}/api/v1/agents/bench/tasks/wait-${Date.now()}/events`
    const post = (step: number) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "WorkflowStepStarted", data: { step } }) })
    for (let i = 0; i < 20; i++) await (await post(-1)).arrayBuffer() // warm-up
    const ms: Array<number> = []
    for (let i = 0; i < requests; i++) {
      const at = performance.now()
      const response = await post(i)
      await response.arrayBuffer()
      if (response.status !== 201) throw new Error(`${name}: ${response.status}`)
      ms.push(performance.now() - at)
    }
    ms.sort((a, b) => a - b)
    rows.push({ gateway: name, requests: String(requests), p50: percentile(ms, 50).toFixed(2), p90: percentile(ms, 90).toFixed(2), p99: percentile(ms, 99).toFixed(2) })
  }
  console.table(rows)
  console.log(JSON.stringify({ scenario: "wait-latency", rows }))
} finally {
  for (const gateway of Object.values(gateways)) await gateway.stop()
  await sentinel.stop()
}
