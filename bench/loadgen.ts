// Load generator: one lean process holding many SSE (raw TCP, HTTP written by hand) or WebSocket
// clients. Controlled by JSON lines on stdin, answers with JSON lines on stdout.
//
// Every event carries `{"step":<n>,"t":<publish wall ms>,…}` in its data. Per connection the
// steps must arrive as first..N in order: a step below the next expected one is a duplicate, a jump
// forward counts the skipped steps as gaps. Unordered (several publishers on one task, e.g. HTTP
// ingest on 8 connections): each step must arrive once, in any order. Latency = receive wall time − t.
//
// Reconnect storm: `{"cmd":"storm",…}` drops every open connection at once and reopens each with its
// own extra headers (Last-Event-ID), first expected step and read throttle; it reports, per group,
// when each client had caught up with the step that was the head at the drop.
import { wallNow } from "./support/clock.ts"
import { makeHistogram, record, toSparse } from "./support/histogram.ts"

export interface ConnectCommand {
  readonly cmd: "connect"
  readonly port: number
  readonly transport: "sse" | "ws"
  /** SSE: request paths. WS: JSON subscribe frames. One entry per connection. */
  readonly targets: string[]
  /** Steps each connection must receive. */
  readonly steps: number
  readonly latency: boolean
  /** Open this many connections, then pause `pauseMs` (0 = all at once). */
  readonly batch: number
  readonly pauseMs: number
  readonly timeoutMs: number
  /** false: steps may arrive in any order (each exactly once). */
  readonly ordered: boolean
}

export interface StormCommand {
  readonly cmd: "storm"
  readonly port: number
  readonly targets: string[]
  /** Per connection: extra request header lines (e.g. `Last-Event-ID: …`), first expected step,
   *  read throttle in bytes/s (0 = none), and group (0 = normal, 1 = throttled). */
  readonly headers: string[]
  readonly firstSteps: number[]
  readonly throttles: number[]
  readonly groups: number[]
  /** The head at the drop: a client is caught up once it has it; latency is recorded for later
   *  (live) steps of the normal clients only (a throttled link delays its live events by design). */
  readonly catchUpStep: number
  readonly timeoutMs: number
}

interface Connection {
  raw: string
  sse: string
  inBody: boolean
  chunked: boolean
  chunkLeft: number
  skip: number
  next: number
  connected: boolean
  ended: boolean
  closed: boolean
  /** The chunked body ended (the server finished the response; the socket may stay open). */
  bodyDone: boolean
  doneAt: number
  /** Unordered mode: steps seen (index = step). */
  seen: Uint8Array | undefined
  distinct: number
  /** Dropped by a storm: its close is not counted. */
  abandoned: boolean
  socket: { end(): void; pause(): void; resume(): void } | undefined
  throttle: number
  /** Throttle: the earliest time the next read is allowed (token bucket). */
  readAllowedAt: number
  group: number
  caughtUpAt: number
  /** Throttle: bytes read so far, and when the head of the drop came. */
  bytesRead: number
  bytesAtCaughtUp: number
  /** Throttle: when the paused socket is due to resume, and how late this process resumed it in all. */
  resumeDueAt: number
  lateMs: number
}

const stats = {
  delivered: 0, gaps: 0, dups: 0, ended: 0, closedEarly: 0, errors: 0, connected: 0, failed: 0,
  firstAt: 0, lastAt: 0, badStatus: 0,
}
const hist = makeHistogram()
const connections: Connection[] = []
let measureLatency = true
let ordered = true
let steps = 0
/** Storm: latency only above this step, catch-up time once a client has it. */
let catchUpStep = 0
let stormAt = 0
let total = 0
let finished = 0
let lastError = ""

const send = (message: object): void => {
  process.stdout.write(JSON.stringify(message) + "\n")
}

const newConnection = (next = 1, throttle = 0, group = 0): Connection => ({
  raw: "", sse: "", inBody: false, chunked: false, chunkLeft: 0, skip: 0, next,
  connected: false, ended: false, closed: false, bodyDone: false, doneAt: 0,
  seen: ordered ? undefined : new Uint8Array(steps + 2), distinct: 0, abandoned: false, socket: undefined,
  throttle, readAllowedAt: 0, group, caughtUpAt: 0, bytesRead: 0, bytesAtCaughtUp: 0, resumeDueAt: 0, lateMs: 0,
})

/** Counts the steps in complete frames of `text` up to `end`; `now` is one clock read per read(). */
const countSteps = (c: Connection, text: string, end: number, now: number): void => {
  let p = 0
  for (let guard = 0; guard < 1_000_000; guard++) {
    const i = text.indexOf('"step":', p)
    if (i < 0 || i > end) break
    const step = parseInt(text.substr(i + 7, 12), 10)
    const ti = text.indexOf('"t":', i)
    p = i + 7
    if (c.seen) {
      if (step >= c.seen.length || c.seen[step]) {
        stats.dups++
        continue
      }
      c.seen[step] = 1
      c.distinct++
      stats.delivered++
    } else if (step === c.next) {
      stats.delivered++
      c.next++
    } else if (step < c.next) {
      stats.dups++
      continue
    } else {
      stats.gaps += step - c.next
      stats.delivered++
      c.next = step + 1
    }
    if (catchUpStep > 0 && c.caughtUpAt === 0 && step >= catchUpStep) {
      c.caughtUpAt = now
      c.bytesAtCaughtUp = c.bytesRead
    }
    if (measureLatency && step > catchUpStep && c.group === 0 && ti >= 0 && ti < end) record(hist, now - parseFloat(text.substr(ti + 4, 24)))
    if (stats.firstAt === 0) stats.firstAt = now
    stats.lastAt = now
  }
  if (!c.ended) {
    const k = text.indexOf("event: WorkflowCompleted")
    if (k >= 0 && k < end) c.ended = true
  }
}

const onSseText = (c: Connection, now: number): void => {
  const end = c.sse.lastIndexOf("\n\n")
  if (end < 0) return
  if (!c.connected) markConnected(c)
  countSteps(c, c.sse, end, now)
  c.sse = c.sse.slice(end + 2)
}

/** Undoes HTTP/1.1 chunked transfer coding, appending the body to `c.sse`. */
const dechunk = (c: Connection): void => {
  const raw = c.raw
  let pos = 0
  for (let guard = 0; guard < 1_000_000 && pos < raw.length; guard++) {
    if (c.chunkLeft > 0) {
      const take = Math.min(c.chunkLeft, raw.length - pos)
      c.sse += raw.substr(pos, take)
      pos += take
      c.chunkLeft -= take
      if (c.chunkLeft === 0) c.skip = 2
    } else if (c.skip > 0) {
      const take = Math.min(c.skip, raw.length - pos)
      pos += take
      c.skip -= take
    } else {
      const nl = raw.indexOf("\r\n", pos)
      if (nl < 0) break
      const size = parseInt(raw.slice(pos, nl), 16)
      pos = nl + 2
      if (!(size > 0)) {
        c.bodyDone = true
        break
      }
      c.chunkLeft = size
    }
  }
  c.raw = pos >= raw.length ? "" : raw.slice(pos)
}

const onSseData = (socket: { end(): void }, c: Connection, bytes: Buffer): void => {
  const now = wallNow()
  if (c.throttle > 0) throttleRead(c, bytes.length, now)
  const text = bytes.toString("latin1")
  if (!c.inBody) {
    c.raw += text
    const headEnd = c.raw.indexOf("\r\n\r\n")
    if (headEnd < 0) return
    const head = c.raw.slice(0, headEnd).toLowerCase()
    if (!head.startsWith("http/1.1 200")) {
      stats.badStatus++
      lastError = head.slice(0, 200)
    }
    c.chunked = head.includes("transfer-encoding: chunked")
    c.inBody = true
    c.raw = c.raw.slice(headEnd + 4)
    if (!c.chunked) {
      c.sse = c.raw
      c.raw = ""
    }
  } else if (c.chunked) {
    c.raw += text
  } else {
    c.sse += text
  }
  if (c.chunked) dechunk(c)
  onSseText(c, now)
  if (c.bodyDone) {
    markClosed(c)
    socket.end()
  }
}

/** Token bucket: after reading `n` bytes the next read waits until the link could have carried
 *  them; meanwhile the socket is paused, so the kernel buffers fill and TCP holds the server back. */
const throttleRead = (c: Connection, n: number, now: number): void => {
  c.bytesRead += n
  c.readAllowedAt = Math.max(c.readAllowedAt, now) + (n / c.throttle) * 1000
  const wait = c.readAllowedAt - now
  if (wait > 5 && c.socket) {
    c.socket.pause()
    c.resumeDueAt = c.readAllowedAt
    setTimeout(() => {
      // A busy load generator resumes late: that time its link idled, not the server's fault.
      c.lateMs += Math.max(0, wallNow() - c.resumeDueAt)
      if (!c.closed) c.socket?.resume()
    }, wait)
  }
}

let connectedReported = false
const markConnected = (c: Connection): void => {
  c.connected = true
  stats.connected++
  maybeReportConnected()
}
const maybeReportConnected = (): void => {
  if (!connectedReported && stats.connected + stats.failed >= total) {
    connectedReported = true
    send({ ev: "connected", connected: stats.connected, failed: stats.failed, at: wallNow(), lastError })
  }
}

const markClosed = (c: Connection): void => {
  if (c.closed || c.abandoned) return
  c.closed = true
  c.doneAt = wallNow()
  if (!c.connected) {
    stats.failed++
    maybeReportConnected()
  }
  if (c.ended) stats.ended++
  else stats.closedEarly++
  finished++
  if (finished === total) send({ ev: "done", at: wallNow() })
}

const openSse = async (port: number, path: string, c: Connection = newConnection(), headers = ""): Promise<void> => {
  connections.push(c)
  try {
    await Bun.connect<Connection>({
      hostname: "127.0.0.1",
      port,
      data: c,
      socket: {
        open(socket) {
          c.socket = socket
          socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n${headers}\r\n`)
        },
        data(socket, bytes) { onSseData(socket, socket.data, bytes) },
        close(socket) { markClosed(socket.data) },
        error(socket, error) { stats.errors++; lastError = String(error); markClosed(socket.data) },
        connectError(socket, error) { stats.errors++; lastError = String(error); markClosed(socket.data) },
      },
    })
  } catch (error) {
    stats.errors++
    lastError = String(error)
    markClosed(c)
  }
}

const openWs = (port: number, subscribe: string): void => {
  const c = newConnection()
  connections.push(c)
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/ws`)
  ws.onopen = () => ws.send(subscribe)
  ws.onmessage = (e) => {
    const now = wallNow()
    const text = typeof e.data === "string" ? e.data : Buffer.from(e.data as ArrayBuffer).toString("latin1")
    if (!c.connected && text.includes('"op":"subscribed"')) markConnected(c)
    countSteps(c, text, text.length, now)
    if (text.includes('"op":"end"')) {
      c.ended = true
      ws.close()
    } else if (text.includes('"op":"error"')) {
      stats.errors++
      lastError = text.slice(0, 300)
    }
  }
  ws.onerror = () => { stats.errors++ }
  ws.onclose = () => markClosed(c)
}

const connectAll = async (command: ConnectCommand): Promise<void> => {
  total = command.targets.length
  measureLatency = command.latency
  ordered = command.ordered
  steps = command.steps
  const started = wallNow()
  setTimeout(() => {
    if (!connectedReported) {
      connectedReported = true
      send({ ev: "connected", connected: stats.connected, failed: total - stats.connected, at: wallNow(), timedOut: true, lastError })
    }
  }, command.timeoutMs).unref()
  const batch = command.batch > 0 ? command.batch : total
  for (let i = 0; i < total; i += batch) {
    for (const target of command.targets.slice(i, i + batch)) {
      if (command.transport === "sse") void openSse(command.port, target)
      else openWs(command.port, target)
    }
    if (command.pauseMs > 0 && i + batch < total) await Bun.sleep(command.pauseMs)
    if (wallNow() - started > command.timeoutMs) break
  }
  if (total === 0) maybeReportConnected()
}

/** Drops every connection at once, then reopens them all with their resume headers. */
const storm = (command: StormCommand): void => {
  for (const c of connections) {
    c.abandoned = true
    c.socket?.end()
  }
  connections.length = 0
  Object.assign(stats, { delivered: 0, gaps: 0, dups: 0, ended: 0, closedEarly: 0, errors: 0, connected: 0, failed: 0, firstAt: 0, lastAt: 0, badStatus: 0 })
  hist.counts.fill(0)
  hist.count = 0
  hist.max = 0
  total = command.targets.length
  finished = 0
  connectedReported = false
  catchUpStep = command.catchUpStep
  stormAt = wallNow()
  setTimeout(() => {
    if (!connectedReported) {
      connectedReported = true
      send({ ev: "connected", connected: stats.connected, failed: total - stats.connected, at: wallNow(), timedOut: true, lastError })
    }
  }, command.timeoutMs).unref()
  command.targets.forEach((path, i) => {
    const c = newConnection(command.firstSteps[i]!, command.throttles[i]!, command.groups[i]!)
    void openSse(command.port, path, c, command.headers[i]! ? `${command.headers[i]}\r\n` : "")
  })
}

const report = (): void => {
  const usage = process.cpuUsage()
  let doneAtMax = 0
  let complete = 0
  let gaps = stats.gaps
  /** Storm: per group, the latest catch-up (ms after the drop; NaN if some client never caught up). */
  const caughtUpMs = [0, 0]
  /** Storm, throttled clients: the longest link time of what a link carried until the head of the
   *  drop (bytes / rate), and the longest time this process resumed a paused link late. */
  let linkMs = 0
  let lateMs = 0
  for (const c of connections) {
    if (c.doneAt > doneAtMax) doneAtMax = c.doneAt
    if (c.ended) complete++
    if (c.seen) gaps += Math.max(0, steps - c.distinct)
    if (stormAt > 0) caughtUpMs[c.group] = c.caughtUpAt === 0 ? NaN : Math.max(caughtUpMs[c.group]!, c.caughtUpAt - stormAt)
    if (c.throttle > 0) {
      linkMs = Math.max(linkMs, (c.bytesAtCaughtUp / c.throttle) * 1000)
      lateMs = Math.max(lateMs, c.lateMs)
    }
  }
  send({
    ev: "report", ...stats, gaps, caughtUpMs, linkMs, lateMs, connections: connections.length, complete,
    doneAtMax, cpuSeconds: (usage.user + usage.system) / 1e6, userSeconds: usage.user / 1e6, systemSeconds: usage.system / 1e6, hist: toSparse(hist), lastError,
  })
}

const decoder = new TextDecoder()
let pending = ""
send({ ev: "ready", pid: process.pid })
for await (const chunk of Bun.stdin.stream()) {
  pending += decoder.decode(chunk, { stream: true })
  let nl: number
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl)
    pending = pending.slice(nl + 1)
    if (!line.trim()) continue
    const message = JSON.parse(line) as { cmd: string }
    if (message.cmd === "connect") void connectAll(message as ConnectCommand)
    else if (message.cmd === "storm") storm(message as StormCommand)
    else if (message.cmd === "report") report()
    else if (message.cmd === "exit") process.exit(0)
  }
}
process.exit(0)
