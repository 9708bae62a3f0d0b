// The bench harness's own parts: the HTTP publisher (keep-alive connections, one request in flight
// on each, latency and errors recorded) against a real Bun server, and the issue-17 verdicts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { HttpPublisher } from "../../bench/support/publisher.ts"
import { scenarios, targetOf, type Figures } from "../../bench/scenarios.ts"
import { startRedis, type RedisServer } from "../support/redis.ts"

const SCRIPT = join(import.meta.dir, "..", "..", "src", "log", "append.lua")

describe("HttpPublisher", () => {
  let redis: RedisServer
  let server: ReturnType<typeof Bun.serve>
  const steps: number[] = []
  const inFlight = new Map<number, number>()
  let maxInFlight = 0
  beforeAll(async () => {
    redis = await startRedis()
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request, srv) {
        const peer = srv.requestIP(request)!.port
        inFlight.set(peer, (inFlight.get(peer) ?? 0) + 1)
        maxInFlight = Math.max(maxInFlight, inFlight.get(peer)!)
        const body = (await request.json()) as { type: string; data: { step?: number } }
        await Bun.sleep(2)
        inFlight.set(peer, inFlight.get(peer)! - 1)
        if (new URL(request.url).pathname.includes("/tasks/refused/")) {
          return Response.json({ error: { code: "bad_event" } }, { status: 400 })
        }
        if (body.data.step !== undefined) steps.push(body.data.step)
        return Response.json({ ids: ["1-0"] }, { status: 201 })
      },
    })
  })
  afterAll(async () => {
    server.stop(true)
    await redis.stop()
  })

  test("keeps every connection busy with one request at a time and records each request's latency", async () => {
    const publisher = new HttpPublisher(redis.url, SCRIPT, server.port!, 4)
    await publisher.open()
    try {
      expect(await publisher.burst({ agentId: "a", taskId: "t" }, 40, 300)).toBe(40)
      expect([...steps].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      expect(inFlight.size).toBe(4)
      expect(maxInFlight).toBe(1)
      expect(publisher.ingest.count).toBe(40)
      expect(publisher.ingest.max).toBeGreaterThanOrEqual(2)
      expect(publisher.errors).toBe(0)
    } finally {
      await publisher.close()
    }
  })

  test("counts a refused request as a publish error, naming its status and body", async () => {
    const publisher = new HttpPublisher(redis.url, SCRIPT, server.port!, 2)
    await publisher.open()
    try {
      await publisher.step({ agentId: "a", taskId: "refused" }, 1, 300)
      expect(publisher.errors).toBe(1)
      expect(publisher.lastError).toContain("HTTP 400")
      expect(publisher.lastError).toContain("bad_event")
    } finally {
      await publisher.close()
    }
  })
})

describe("issue 17 verdicts", () => {
  const storm = scenarios().find((s) => s.name === "reconnect-storm")!
  const figures = (over: Partial<Figures>): Figures => ({
    delivered: 10, expected: 10, gaps: 0, dups: 0, p99Ms: 10, serverCpuS: 1, deliveriesPerS: 1, rssPerConnectionKB: 1,
    historyAllS: NaN, publishedPerS: 100, ingestP99Ms: 10, cpuPerEventUs: 50, stormCaughtUpS: 3, stormThrottledS: 4, peakRssMB: 100, ...over,
  })

  test("the storm is met only with nothing lost, all caught up in 5 s and the throttled within their link's time + 2 s", () => {
    expect(targetOf(storm, figures({}), undefined, undefined).met).toBe(true)
    expect(targetOf(storm, figures({ stormCaughtUpS: 5.5 }), undefined, undefined).met).toBe(false)
    // 5 MB at 2 MB/s is 2.5 s; + 2 s
    expect(targetOf(storm, figures({ stormThrottledS: 4.6 }), undefined, undefined).met).toBe(false)
    expect(targetOf(storm, figures({ stormThrottledS: NaN }), undefined, undefined).met).toBe(false)
    expect(targetOf(storm, figures({ delivered: 9 }), undefined, undefined).met).toBe(false)
  })

  test("fanout over HTTP needs the publisher to keep its rate and ingest p99 within 50 ms", () => {
    const fanoutHttp = scenarios().find((s) => s.name === "fanout-http")!
    expect(targetOf(fanoutHttp, figures({}), undefined, undefined).met).toBe(true)
    expect(targetOf(fanoutHttp, figures({ publishedPerS: 59 }), undefined, undefined).met).toBe(false)
    expect(targetOf(fanoutHttp, figures({ ingestP99Ms: 140 }), undefined, undefined).met).toBe(false)
  })

  test("many over HTTP is held against Nchan's CPU in the same run, burst against the ceiling's rate and memory", () => {
    const manyHttp = scenarios().find((s) => s.name === "many-http")!
    expect(targetOf(manyHttp, figures({ serverCpuS: 3 }), undefined, undefined, figures({ serverCpuS: 1.5 })).met).toBe(true)
    expect(targetOf(manyHttp, figures({ serverCpuS: 3.1 }), undefined, undefined, figures({ serverCpuS: 1.5 })).met).toBe(false)
    expect(targetOf(manyHttp, figures({ cpuPerEventUs: 61 }), undefined, undefined, figures({})).met).toBe(false)
    expect(targetOf(manyHttp, figures({}), undefined, undefined).met).toBeUndefined()
    const burst = scenarios().find((s) => s.name === "burst")!
    const ceiling = figures({ deliveriesPerS: 2_000_000, peakRssMB: 120 })
    expect(targetOf(burst, figures({ deliveriesPerS: 1_900_000, peakRssMB: 230 }), ceiling, undefined).met).toBe(true)
    expect(targetOf(burst, figures({ deliveriesPerS: 1_700_000, peakRssMB: 230 }), ceiling, undefined).met).toBe(false)
    expect(targetOf(burst, figures({ deliveriesPerS: 1_900_000, peakRssMB: 250 }), ceiling, undefined).met).toBe(false)
  })
})
