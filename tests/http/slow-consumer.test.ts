/**
 * Slow consumers (SPEC §6, §7, §8.1): clients that stop reading are cut off once
 * their outbound buffer is full, memory stays bounded, and a normal client of
 * the same task is not slowed down; a client cut off resumes in one connection.
 */
import { describe, expect, it } from "bun:test"
import { readFileSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { postEvents, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { openRawSse } from "../support/rawSse.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024

describe("Slow consumers", () => {
  const harness = useHarness("redis", { CLIENT_BUFFER_BYTES: String(1024 * 1024) })

  it("disconnects 20 clients that never read while ~20 MB is published, keeps RSS bounded, and serves a normal client promptly", async () => {
    const { url, gateway } = harness()
    const agent = "agent-slow"
    const task = uniqueTask("slow")
    const path = `${taskPath(agent, task)}/events/stream`
    const { port } = new URL(url)
    const stalled: Array<Socket> = []
    let closedByServer = 0
    for (let i = 0; i < 20; i++) {
      const socket = connect(Number(port), "127.0.0.1")
      socket.on("connect", () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
        socket.pause()
      })
      socket.on("close", () => closedByServer++)
      socket.on("error", () => {})
      stalled.push(socket)
    }
    const reader = await openSse(`${url}${path}`)
    await reader.waitFor((frames) => frames.length >= 1)
    const baseline = rssMb(gateway.process.pid!)

    const pad = "x".repeat(40_000)
    const total = 500
    for (let n = 1; n <= total; n += 10) {
      const batch = Array.from({ length: 10 }, (_, i) => ({ type: "WorkflowStepStarted", data: { step: n + i, pad } }))
      expect((await postEvents(url, agent, task, batch)).status).toBe(201)
    }
    const published = Date.now()
    await reader.waitFor((frames) => eventFrames(frames).length === total, 20_000)
    const readerLagMs = Date.now() - published
    expect(eventFrames(reader.frames).map((frame) => JSON.parse(frame.data).step)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1)
    )
    expect(readerLagMs).toBeLessThan(10_000)

    const peak = rssMb(gateway.process.pid!)
    expect(peak - baseline).toBeLessThan(200)
    const metrics = await eventually(async () => {
      const text = await (await fetch(`${url}/metrics`)).text()
      const match = /taskstream_disconnects_total\{[^}]*reason="slow_consumer"[^}]*transport="sse"[^}]*\} (\d+)/.exec(text) ??
        /taskstream_disconnects_total\{[^}]*transport="sse"[^}]*reason="slow_consumer"[^}]*\} (\d+)/.exec(text)
      return match !== null && Number(match[1]) >= 20 ? text : undefined
    }, 15_000, "20 slow-consumer disconnects")
    expect(metrics).toMatch(/taskstream_connections\{transport="sse"\} 1\b/)
    for (const socket of stalled) socket.resume()
    await eventually(() => closedByServer === 20, 10_000, "the stalled sockets to see the server close")
    reader.close()

    // A client that was cut off resumes, and gets the whole 20 MB in one connection (SPEC §8.1).
    expect((await postEvents(url, agent, task, { type: "WorkflowCompleted", data: {} })).status).toBe(201)
    const resumed = openRawSse(`${url}${path}`)
    expect(await resumed.closed).toEqual({ clean: true })
    expect(eventFrames(resumed.frames).map((frame) => frame.event === "WorkflowCompleted" ? "end" : JSON.parse(frame.data).step)).toEqual([
      ...Array.from({ length: total }, (_, i) => i + 1),
      "end"
    ])
  }, 60_000)
})
