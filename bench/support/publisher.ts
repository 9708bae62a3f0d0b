// Publishes bench events through the contract's atomic script (src/log/append.lua) with EVALSHA
// (Publisher), or through the gateway's `POST …/events` (HttpPublisher: N keep-alive connections,
// one request at a time each, no pipelining — Bun 1.4.5 resets pipelined requests to async handlers).
// Each event is a WorkflowStepStarted whose data carries the step number and the publish wall time:
// {"step":<n>,"t":<ms>,"pad":"xxx…"} padded to the scenario's payload size.
import Redis from "ioredis"
import type { Socket } from "bun"
import { readFileSync } from "node:fs"
import { wallNow } from "./clock.ts"
import { makeHistogram, record, type Histogram } from "./histogram.ts"

export interface Task {
  readonly agentId: string
  readonly taskId: string
}

type AppendCommand = (...args: string[]) => Promise<string[]>
type Appender = Redis & { tsAppend: AppendCommand }
type AppendPipeline = ReturnType<Redis["pipeline"]> & { tsAppend: (...args: string[]) => unknown }

const PREFIX = process.env.REDIS_PREFIX ?? "ts"
/** Generous, so the reconnect storm can resume 5 MB (≈ 17 000 events) behind the head. */
const HISTORY_MAX = "50000"
const RETENTION_S = "86400"
const IDEMPOTENCY_S = "86400"
const INFLIGHT_TTL_S = "3600"
const TASK_IDLE_TTL_S = "86400"

export const stepData = (step: number, payloadBytes: number): string => {
  const head = `{"step":${step},"t":${wallNow().toFixed(3)},"pad":"`
  return head + "x".repeat(Math.max(0, payloadBytes - head.length - 2)) + '"}'
}

export const appendArgs = (task: Task, type: string, data: string): string[] => [
  `${PREFIX}:{${task.taskId}}:log`, `${PREFIX}:{${task.taskId}}:live`, `${PREFIX}:{${task.taskId}}:inflight`,
  task.agentId, HISTORY_MAX, RETENTION_S, IDEMPOTENCY_S, "PUBLISH", INFLIGHT_TTL_S, TASK_IDLE_TTL_S, "1", type, data, "", "0",
]

export class Publisher {
  readonly redis: Appender
  errors = 0
  lastError = ""
  /** Script calls made so far (each makes one XREVRANGE inside Redis: the storm's log-read count
   *  subtracts them). */
  appends = 0

  constructor(url: string, scriptPath: string) {
    this.redis = new Redis(url) as Appender
    this.redis.defineCommand("tsAppend", { numberOfKeys: 3, lua: readFileSync(scriptPath, "utf8") })
  }

  private noteError = (error: unknown): void => {
    this.errors++
    this.lastError = String(error)
  }

  /** Requests publishing (HTTP only): latency per request, ms. */
  readonly ingest: Histogram | undefined = undefined

  step(task: Task, step: number, payloadBytes: number): Promise<unknown> {
    this.appends++
    return this.redis.tsAppend(...appendArgs(task, "WorkflowStepStarted", stepData(step, payloadBytes))).catch(this.noteError)
  }

  complete(task: Task): Promise<unknown> {
    this.appends++
    return this.redis.tsAppend(...appendArgs(task, "WorkflowCompleted", '{"final_response":"done"}')).catch(this.noteError)
  }

  /** `total` events round-robin over `tasks` at `rate` per second (task k % T gets step ⌊k/T⌋+firstStep). */
  async atRate(tasks: Task[], rate: number, total: number, payloadBytes: number, maxMs: number, firstStep = 1): Promise<number> {
    const start = wallNow()
    const inFlight: Promise<unknown>[] = []
    let sent = 0
    for (let guard = 0; sent < total && guard < 10_000_000; guard++) {
      const elapsed = wallNow() - start
      if (elapsed > maxMs) break
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000) + 1)
      for (; sent < due; sent++) {
        inFlight.push(this.step(tasks[sent % tasks.length]!, Math.floor(sent / tasks.length) + firstStep, payloadBytes))
      }
      await Bun.sleep(2)
    }
    await Promise.all(inFlight)
    return sent
  }

  /** `count` events to one task as fast as Redis takes them: pipelines of `batch`, `window` in flight. */
  async burst(task: Task, count: number, payloadBytes: number, batch = 200, window = 4): Promise<number> {
    let next = 1
    const worker = async (): Promise<void> => {
      for (let guard = 0; next <= count && guard < 1_000_000; guard++) {
        const pipeline = this.redis.pipeline() as AppendPipeline
        const end = Math.min(count, next + batch - 1)
        for (; next <= end; next++) {
          this.appends++
          pipeline.tsAppend(...appendArgs(task, "WorkflowStepStarted", stepData(next, payloadBytes)))
        }
        const results = (await pipeline.exec()) ?? []
        for (const [error] of results) if (error) this.noteError(error)
      }
    }
    await Promise.all(Array.from({ length: window }, worker))
    return next - 1
  }

  async close(): Promise<void> {
    this.redis.disconnect()
  }
}

interface PendingRequest {
  readonly method: "POST" | "DELETE"
  readonly path: string
  /** Extra header lines, each ending in CRLF. */
  readonly headers: string
  readonly body: () => string
  readonly resolve: (value: unknown) => void
  sentAt: number
}

interface Lane {
  socket: Socket<Lane> | undefined
  readonly queue: PendingRequest[]
  current: PendingRequest | undefined
  buffer: string
}

const HTTP_CONNECT_TIMEOUT_MS = 5000

/** Publishes through the gateway's HTTP ingest: `connections` keep-alive sockets, one request in
 *  flight on each; a request waits in the publisher when every connection is busy (so the achieved
 *  rate shows how fast the gateway answers). Latency = response received − request written. */
export class HttpPublisher extends Publisher {
  override readonly ingest = makeHistogram()
  private readonly lanes: Lane[]
  private next = 0

  constructor(url: string, scriptPath: string, private readonly port: number, connections: number) {
    super(url, scriptPath)
    this.lanes = Array.from({ length: connections }, () => ({ socket: undefined, queue: [], current: undefined, buffer: "" }))
  }

  /** Opens the keep-alive connections (bounded wait). */
  async open(): Promise<void> {
    const started = wallNow()
    await Promise.all(this.lanes.map((lane) => Bun.connect<Lane>({
      hostname: "127.0.0.1", port: this.port, data: lane,
      socket: {
        data: (socket, bytes) => this.onData(socket.data, bytes.toString("latin1")),
        close: (socket) => this.onClose(socket.data, "connection closed"),
        error: (socket, error) => this.onClose(socket.data, String(error)),
      },
    }).then((socket) => { lane.socket = socket })))
    if (wallNow() - started > HTTP_CONNECT_TIMEOUT_MS) throw new Error("HTTP publisher: connecting took too long")
  }

  private send(lane: Lane): void {
    if (lane.current || !lane.socket) return
    const request = lane.queue.shift()
    if (!request) return
    lane.current = request
    const body = request.body()
    request.sentAt = wallNow()
    lane.socket.write(`${request.method} ${request.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `${request.headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }

  private onData(lane: Lane, text: string): void {
    lane.buffer += text
    for (let guard = 0; guard < 10_000; guard++) {
      const headEnd = lane.buffer.indexOf("\r\n\r\n")
      if (headEnd < 0) return
      const head = lane.buffer.slice(0, headEnd)
      const length = /content-length: *(\d+)/i.exec(head)
      if (!length) {
        this.fail(lane, `response without Content-Length: ${head.slice(0, 120)}`)
        return
      }
      const end = headEnd + 4 + Number(length[1])
      if (lane.buffer.length < end) return
      const status = head.slice(9, 12)
      const body = lane.buffer.slice(headEnd + 4, end)
      lane.buffer = lane.buffer.slice(end)
      const request = lane.current
      lane.current = undefined
      if (request) {
        if (request.method === "POST") record(this.ingest, wallNow() - request.sentAt)
        if (status !== "201" && status !== "200" && status !== "202") this.failOne(`HTTP ${status}: ${body.slice(0, 200)}`)
        request.resolve(undefined)
      }
      this.send(lane)
    }
  }

  private failOne(message: string): void {
    this.errors++
    this.lastError = message
  }

  private fail(lane: Lane, message: string): void {
    const lost = [lane.current, ...lane.queue.splice(0)].filter((r) => r !== undefined)
    lane.current = undefined
    for (const r of lost) {
      this.failOne(message)
      r.resolve(undefined)
    }
  }

  private onClose(lane: Lane, message: string): void {
    lane.socket = undefined
    this.fail(lane, message)
  }

  protected post(task: Task, body: () => string, request: Pick<PendingRequest, "method" | "path" | "headers"> = {
    method: "POST", path: `/api/v1/agents/${task.agentId}/tasks/${task.taskId}/events`, headers: "",
  }): Promise<unknown> {
    // The least-loaded connection, round-robin among equals.
    let best = this.lanes[this.next++ % this.lanes.length]!
    for (const lane of this.lanes) {
      if (lane.queue.length + (lane.current ? 1 : 0) < best.queue.length + (best.current ? 1 : 0)) best = lane
    }
    if (!best.socket) {
      this.failOne("HTTP publisher: connection closed")
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      best.queue.push({ ...request, body, resolve, sentAt: 0 })
      this.send(best)
    })
  }

  override step(task: Task, step: number, payloadBytes: number): Promise<unknown> {
    // The data (and its publish time `t`) is built when the request is written, not when queued.
    return this.post(task, () => `{"type":"WorkflowStepStarted","data":${stepData(step, payloadBytes)}}`)
  }

  override complete(task: Task): Promise<unknown> {
    return this.post(task, () => '{"type":"WorkflowCompleted","data":{"final_response":"done"}}')
  }

  /** Every connection busy, one request at a time each. */
  override async burst(task: Task, count: number, payloadBytes: number): Promise<number> {
    let next = 1
    const worker = async (): Promise<void> => {
      for (; next <= count;) await this.step(task, next++, payloadBytes)
    }
    await Promise.all(this.lanes.map(worker))
    return next - 1
  }

  override async close(): Promise<void> {
    for (const lane of this.lanes) lane.socket?.end()
    await super.close()
  }
}

/** Publishes to Nchan (bench/baselines/nchan.ts) the same way: `POST /pub/<task>` with the event's
 *  data as the body and its type as the SSE event name; the terminal event, then `DELETE`, which
 *  ends the subscribers' streams. */
export class NchanPublisher extends HttpPublisher {
  private publish(task: Task, type: string, data: () => string): Promise<unknown> {
    return this.post(task, data, { method: "POST", path: `/pub/${task.taskId}`, headers: `X-EventSource-Event: ${type}\r\n` })
  }

  override step(task: Task, step: number, payloadBytes: number): Promise<unknown> {
    return this.publish(task, "WorkflowStepStarted", () => stepData(step, payloadBytes))
  }

  override async complete(task: Task): Promise<unknown> {
    await this.publish(task, "WorkflowCompleted", () => '{"final_response":"done"}')
    return this.post(task, () => "", { method: "DELETE", path: `/pub/${task.taskId}`, headers: "" })
  }
}
