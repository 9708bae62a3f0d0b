/** The SSE transport alone (no server): framing, one write per turn, the bounded outbound buffer. */
import { describe, expect, it } from "bun:test"
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import type { CloseReason } from "../../src/transport/connections.ts"
import { type SseFormat, TaskstreamCodecs } from "../../src/transport/codecs/taskstream.ts"
import { Writes } from "../../src/transport/outbox.ts"
import { SseConnection } from "../../src/transport/sse.ts"

const task = { agentId: "a", taskId: "t" }
const TIME = "2026-11-24T10:00:00.000Z"
const step = (n: number, extra: Record<string, unknown> = {}) =>
  LogEvent.fromDraft(builtinRegistry, `100-${n}`, task, "WorkflowStepStarted", TIME, { step: n, ...extra })
const chunk = LogEvent.fromDraft(builtinRegistry, undefined, task, "WorkflowLLMCallChunk", TIME, { chunk: "Hi", chunk_index: 0 })

const open = (options: { format?: SseFormat; bufferBytes?: number } = {}) => {
  const closes: Array<CloseReason> = []
  const connection = new SseConnection({
    codec: TaskstreamCodecs[options.format ?? "payload"],
    subject: "s",
    expiresAt: Infinity,
    retryMs: 2000,
    bufferBytes: options.bufferBytes ?? 1 << 20,
    writes: new Writes(),
    owner: { closed: (reason) => void closes.push(reason) }
  })
  const reader = connection.body.getReader()
  const decoder = new TextDecoder()
  /** The next write, as text. */
  const next = async () => {
    const { value, done } = await reader.read()
    return done ? undefined : decoder.decode(value)
  }
  return { connection, next, closes }
}

/** Let the queued microtask flush run. */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

describe("SSE transport", () => {
  it("starts with the retry line, then frames events with id, event and data; ephemeral ones without id", async () => {
    const { connection, next } = open()
    expect(await next()).toBe("retry: 2000\n\n")
    connection.event(step(1))
    await turn()
    expect(await next()).toBe('id: 100-1\nevent: WorkflowStepStarted\ndata: {"step":1}\n\n')
    connection.event(chunk)
    connection.resync("100-5")
    connection.heartbeat()
    await turn()
    const text = (await next())!
    expect(text.startsWith('event: WorkflowLLMCallChunk\ndata: {"chunk":"Hi","chunk_index":0}\n\nevent: resync\ndata: {"reason":"history_trimmed","oldest":"100-5"}\n\nevent: heartbeat\ndata: {"time":"')).toBe(true)
  })

  it("sends the envelope with format=envelope", async () => {
    const { connection, next } = open({ format: "envelope" })
    await next()
    connection.event(step(2))
    await turn()
    const [, , data] = (await next())!.split("\n")
    expect(JSON.parse(data.slice("data: ".length))).toEqual({ id: "100-2", type: "WorkflowStepStarted", agentId: "a", taskId: "t", time: TIME, data: { step: 2 } })
  })

  /** A connection whose runtime stream takes the first write (the retry line, as the response starts) and throws on the next. */
  const breaking = () => {
    const closes: Array<CloseReason> = []
    const errors: Array<unknown> = []
    const seen = { aborted: false }
    let writes = 0
    const connection = new SseConnection({
      codec: TaskstreamCodecs.payload,
      subject: "s",
      expiresAt: Infinity,
      retryMs: 2000,
      bufferBytes: 1 << 20,
      writes: new Writes((error) => void errors.push(error)),
      owner: { closed: (reason) => void closes.push(reason) },
      body: (source) => {
        source.open({
          write: () => {
            if (writes++ > 0) throw new TypeError("the controller is closed")
          },
          backlog: () => 0,
          end: () => {},
          abort: () => void (seen.aborted = true)
        })
        return new ReadableStream()
      }
    })
    return { connection, closes, errors, seen }
  }

  it("closes for good, its owner told 'write_failed' and the response cut, when the runtime's stream throws on a write", async () => {
    const { connection, closes, errors, seen } = breaking()
    connection.event(step(1))
    await turn()
    expect({ closed: connection.isClosed, closes, aborted: seen.aborted, errors: errors.map(String) }).toEqual({
      closed: true,
      closes: ["write_failed"],
      aborted: true,
      errors: ["TypeError: the controller is closed"]
    })
  })

  it("closes as write_failed when the flush of its close throws (the drain, a token expiry)", () => {
    const { connection, closes, seen } = breaking()
    connection.event(step(1))
    connection.close("shutdown")
    expect({ closed: connection.isClosed, closes, aborted: seen.aborted }).toEqual({ closed: true, closes: ["write_failed"], aborted: true })
  })

  it("writes the frames of one turn in one write", async () => {
    const { connection, next } = open()
    await next()
    for (let n = 1; n <= 50; n++) connection.event(step(n))
    await turn()
    const text = (await next())!
    expect(text.split("\n\n").filter((frame) => frame !== "")).toHaveLength(50)
  })

  it("hands connections flushed with the same frames one shared buffer, not a copy each", async () => {
    const writes = new Writes()
    const readers = [0, 1, 2].map(() => {
      const connection = new SseConnection({
        codec: TaskstreamCodecs.payload, subject: "s", expiresAt: Infinity, retryMs: 2000, bufferBytes: 1 << 20, writes,
        owner: { closed: () => {} }
      })
      return { connection, reader: connection.body.getReader() }
    })
    for (const { reader } of readers) await reader.read()
    const events = [1, 2, 3, 4].map((n) => step(n))
    for (const { connection } of readers) for (const event of events) connection.event(event)
    await turn()
    const writes0 = await Promise.all(readers.map(({ reader }) => reader.read().then(({ value }) => value!)))
    expect(new TextDecoder().decode(writes0[0]).split("\n\n").filter((frame) => frame !== "")).toHaveLength(4)
    expect(writes0[1]).toBe(writes0[0])
    expect(writes0[2]).toBe(writes0[0])
  })

  it("flushes what is queued, then ends the response, at a terminal end", async () => {
    const { connection, next, closes } = open()
    await next()
    connection.event(step(1))
    connection.end("completed")
    expect(await next()).toContain("id: 100-1")
    expect(await next()).toBeUndefined()
    expect(closes).toEqual(["completed"])
  })

  it("cuts off a client that does not read once more than its buffer waits, and says why once", async () => {
    const { connection, closes } = open({ bufferBytes: 10_000 })
    const big = "x".repeat(1000)
    for (let round = 0; round < 20 && closes.length === 0; round++) {
      connection.event(step(round, { big }))
      await turn()
    }
    expect(closes).toEqual(["slow_consumer"])
    connection.event(step(99))
    connection.close("shutdown")
    expect(closes).toEqual(["slow_consumer"])
  })
})
