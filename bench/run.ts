// `npm run bench [-- scenario…] [--targets=ceiling,gateway,floor] [--scale=0.1] [--repeat=3]
//                 [--<scenario>.<field>=<n>] [--profile[=heap]] [--update] [--pin]`
//
// Starts its own redis-server, then per scenario and per target (ceiling, gateway, floor) a fresh
// server process and two load-generator processes; publishes through src/log/append.lua or through
// the server's `POST …/events` (HTTP scenarios); prints a table and one JSON line per scenario;
// writes bench/results/latest.json.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { wallNow } from "./support/clock.ts"
import { makeHistogram, mergeSparse, percentile } from "./support/histogram.ts"
import { cpuSeconds, machineCpu, peakRssBytes, rssBytes } from "./support/proc.ts"
import {
  BUN, drainLines, freePort, spawnChild, stopChild, timeout, waitForLine, type Child,
} from "./support/processes.ts"
import { HttpPublisher, NchanPublisher, Publisher, type Task } from "./support/publisher.ts"
import { nchanCommand, nchanMissing, waitForPort } from "./baselines/nchan.ts"
import { startRedis, type BenchRedis } from "./support/redis.ts"
import {
  FLOOR_MAX_REDIS_CONNECTIONS, scenarios, stepsPerConnection, targetOf, totalEvents,
  type Figures, type Scenario, type Target,
} from "./scenarios.ts"
import type { ConnectCommand, StormCommand } from "./loadgen.ts"

const ROOT = resolve(import.meta.dir, "..")
const RESULTS = join(ROOT, "bench", "results")
const LOADGEN_PROCESSES = 2
const CONNECT_TIMEOUT_MS = 30_000
const DRAIN_TIMEOUT_MS = 15_000
const AGENT = "bench-agent"

// ---- command line -------------------------------------------------------------------------
const args = process.argv.slice(2)
const flag = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? (args.includes(`--${name}`) ? "true" : undefined)
const scale = Number(flag("scale") ?? process.env.BENCH_SCALE ?? 1)
const targets = (flag("targets") ?? process.env.BENCH_TARGETS ?? "ceiling,gateway,floor,nchan").split(",") as Target[]
/** --profile: CPU profile of the gateway per scenario (whole process life, shutdown included);
 *  --profile=heap: a heap snapshot of the gateway at the end of the measurement window instead. */
const profile = flag("profile") ?? process.env.BENCH_PROFILE
/** --repeat=N: measure every (scenario, target) N times, interleaved; report per-figure medians. */
const repeat = Math.max(1, Math.min(9, Number(flag("repeat") ?? process.env.BENCH_REPEAT ?? 1)))
/** --pin: the server on CPU 1, the load generators on CPU 0, so they do not take turns on one core. */
const pin = flag("pin") === "true" || process.env.BENCH_PIN === "1"
const scriptPath = process.env.APPEND_LUA ?? join(ROOT, "src", "log", "append.lua")
const all = scenarios()
const chosen = args.filter((a) => !a.startsWith("--"))
for (const name of chosen) if (!all.some((s) => s.name === name)) throw new Error(`unknown scenario ${name}; known: ${all.map((s) => s.name).join(", ")}`)
const selected = all.filter((s) => chosen.length === 0 || chosen.includes(s.name))
for (const s of selected) {
  if (scale !== 1) {
    const connections = s.tasks * (s.subscribersPerTask + s.throttledClients)
    if (s.subscribersPerTask > 1) s.subscribersPerTask = Math.max(1, Math.round(s.subscribersPerTask * scale))
    else s.tasks = Math.max(1, Math.round(s.tasks * scale))
    s.durationS = Math.max(1, Math.round(s.durationS * scale))
    if (s.mode === "burst") s.events = Math.max(100, Math.round(s.events * scale))
    if (s.mode === "rate" && s.tasks > 1) s.rate = Math.max(10, Math.round(s.rate * scale))
    if (s.mode === "storm") {
      s.throttledClients = Math.max(1, Math.round(s.throttledClients * scale))
      s.durationS = Math.max(6, s.durationS)
    }
    void connections
  }
  for (const a of args) {
    const m = /^--([\w-]+)\.(\w+)=(\d+(?:\.\d+)?)$/.exec(a)
    if (m && m[1] === s.name) {
      if (!(m[2]! in s)) throw new Error(`--${m[1]}.${m[2]}: no such field; fields: ${Object.keys(s).join(", ")}`)
      ;(s as unknown as Record<string, number>)[m[2]!] = Number(m[3])
    }
  }
}

// ---- one measurement -----------------------------------------------------------------------
export interface Result extends Figures {
  scenario: string
  target: Target
  status: "ok" | "skipped" | "error"
  note: string
  connections: number
  connectFailed: number
  closedEarly: number
  p50Ms: number
  maxMs: number
  loadgenCpuS: number
  redisCpuS: number
  peakRssMB: number
  elapsedS: number
  /** Events the publisher appended per second (the burst scenario's upper bound on throughput). */
  publishedPerS: number
  publishErrors: number
  /** Load generators' lifetime user / system CPU seconds (connect phase included). */
  loadgenUserS: number
  loadgenSystemS: number
  /** CPU the rest of the machine used in the window: busy time minus server, load generators, Redis
   *  and this runner. Interrupt work not charged to a process, plus other work on a shared machine. */
  otherCpuS: number
  /** Interrupt (irq + softirq) CPU seconds in the window, much of it loopback TCP; the kernel charges
   *  part of it to the processes too, so it overlaps the other columns. */
  interruptCpuS: number
  /** HTTP publisher: latency of one ingest request (written → answered), ms. */
  ingestP50Ms: number
  ingestP99Ms: number
  ingestMaxMs: number
  /** Server CPU per published event (µs): for the HTTP scenarios, the cost of an ingest request plus
   *  its fan-out (in many-http the fan-out is one delivery). */
  cpuPerEventUs: number
  /** The busiest load-generator process's CPU over the window, % of one core (≥ 90: it may be the bottleneck). */
  loadgenMaxCorePct: number
  /** Storm: seconds from the drop until the last normal / throttled client had the head of the drop. */
  stormCaughtUpS: number
  stormThrottledS: number
  /** Storm, throttled clients: the link time of what a link carried until the head of the drop (bytes /
   *  rate; the frames are larger than the payloads), and the longest time a load generator, busy with the
   *  other clients, resumed a paused link late (its link idled through no fault of the server). */
  stormLinkS: number
  stormLoadgenLateS: number
  /** Storm: log reads the server made (XRANGE + XREVRANGE + XREAD calls, INFO commandstats) from the drop on. */
  logReads: number
  /** Idle: RSS per connection 12 s after the last one connected, once the runtime has returned the
   *  memory the openings' work left (Bun takes 5–10 s); the 2-s figure is `rssPerConnectionKB`. */
  rssSettledPerConnectionKB: number
}

const emptyResult = (s: Scenario, target: Target, status: Result["status"], note: string): Result => ({
  scenario: s.name, target, status, note, connections: s.tasks * (s.subscribersPerTask + s.throttledClients), connectFailed: 0,
  closedEarly: 0, delivered: 0, expected: 0, gaps: 0, dups: 0, p50Ms: NaN, p99Ms: NaN, maxMs: NaN,
  serverCpuS: NaN, loadgenCpuS: NaN, redisCpuS: NaN, peakRssMB: NaN, rssPerConnectionKB: NaN,
  elapsedS: NaN, deliveriesPerS: NaN, historyAllS: NaN, publishedPerS: NaN, publishErrors: 0, loadgenUserS: 0, loadgenSystemS: 0, otherCpuS: NaN, interruptCpuS: NaN,
  ingestP50Ms: NaN, ingestP99Ms: NaN, ingestMaxMs: NaN, cpuPerEventUs: NaN, loadgenMaxCorePct: NaN, stormCaughtUpS: NaN,
  stormThrottledS: NaN, stormLinkS: NaN, stormLoadgenLateS: NaN, logReads: NaN, rssSettledPerConnectionKB: NaN,
})

const serverCommand = (target: Target, scenario: string, port: number): string[] => {
  if (target === "nchan") return nchanCommand(port, join(tmpdir(), `taskstream-bench-nchan-${port}`))
  if (target === "ceiling") return [BUN, "bench/baselines/ceiling.ts"]
  if (target === "floor") return [BUN, "bench/baselines/floor.ts"]
  if (profile === "heap") return [BUN, "bench/support/heap-snapshot-entry.ts"]
  const prof = profile
    ? ["--cpu-prof", `--cpu-prof-dir=${join(RESULTS, "profiles")}`, `--cpu-prof-name=gateway-${scenario}.cpuprofile`]
    : []
  return [BUN, ...prof, ...(process.env.BENCH_GATEWAY_FLAGS ?? "").split(" ").filter(Boolean), "src/main.bun.ts"]
}

const heapSnapshotPath = (scenario: string): string => join(RESULTS, "profiles", `gateway-${scenario}.heapsnapshot`)

/** Asks the gateway (started through heap-snapshot-entry.ts) for a heap snapshot; waits ≤ 60 s. */
const takeHeapSnapshot = async (pid: number, path: string): Promise<void> => {
  rmSync(path, { force: true })
  process.kill(pid, "SIGUSR2")
  for (let i = 0; i < 600 && !existsSync(path); i++) await Bun.sleep(100)
}

const tasksOf = (s: Scenario): Task[] =>
  Array.from({ length: s.tasks }, (_, i) => ({ agentId: AGENT, taskId: `${s.name}-${i}` }))

/** Every connection's target; in the storm the throttled clients come last. */
const targetsOf = (s: Scenario, tasks: Task[], target: Target): string[] => {
  const history = s.mode === "history"
  const out: string[] = []
  for (let sub = 0; sub < s.subscribersPerTask + s.throttledClients; sub++) {
    for (const t of tasks) {
      out.push(target === "nchan" ? `/sub/${t.taskId}`
        : s.transport === "sse"
        ? `/api/v1/agents/${t.agentId}/tasks/${t.taskId}/events/stream?include_history=${history}`
        : JSON.stringify({ op: "subscribe", sub: "s1", agentId: t.agentId, taskId: t.taskId, history }))
    }
  }
  return out
}

interface Worker {
  child: Child
  events: Map<string, { resolve: (m: Record<string, unknown>) => void; promise: Promise<Record<string, unknown>> }>
}

const startWorker = async (): Promise<Worker> => {
  const child = spawnChild([BUN, "bench/loadgen.ts"], {}, ROOT, pin ? "0" : undefined)
  await waitForLine(child, (l) => l.includes('"ev":"ready"'), 10_000, "load generator start")
  const worker: Worker = { child, events: new Map() }
  const slot = (ev: string) => {
    let entry = worker.events.get(ev)
    if (!entry) {
      let resolve!: (m: Record<string, unknown>) => void
      const promise = new Promise<Record<string, unknown>>((r) => { resolve = r })
      entry = { resolve, promise }
      worker.events.set(ev, entry)
    }
    return entry
  }
  ;(worker as Worker & { slot: typeof slot }).slot = slot
  drainLines(child, (line) => {
    if (!line.startsWith("{")) return
    const message = JSON.parse(line) as Record<string, unknown>
    slot(String(message.ev)).resolve(message)
  })
  return worker
}
const awaitEvent = (w: Worker, ev: string): Promise<Record<string, unknown>> =>
  (w as Worker & { slot: (ev: string) => { promise: Promise<Record<string, unknown>> } }).slot(ev).promise
/** Forgets an answer already received, so the next one of that kind can be awaited (storm: connected twice). */
const forget = (w: Worker, ev: string): void => { w.events.delete(ev) }
const command = (w: Worker, message: object): void => {
  w.child.proc.stdin.write(JSON.stringify(message) + "\n")
  w.child.proc.stdin.flush()
}

const wsAvailable = async (port: number): Promise<boolean> =>
  new Promise((done) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/ws`)
    const timer = setTimeout(() => { ws.close(); done(false) }, 3000)
    ws.onopen = () => { clearTimeout(timer); ws.close(); done(true) }
    ws.onerror = () => { clearTimeout(timer); done(false) }
  })

const measure = async (s: Scenario, target: Target, redis: BenchRedis): Promise<Result> => {
  const connections = s.tasks * (s.subscribersPerTask + s.throttledClients)
  if (target === "floor" && (s.transport === "ws" || s.publish === "http" || s.mode === "storm" || connections > FLOOR_MAX_REDIS_CONNECTIONS)) {
    return emptyResult(s, target, "skipped", s.transport === "ws" ? "floor has no WebSocket"
      : s.publish === "http" ? "floor has no HTTP ingest"
      : s.mode === "storm" ? "floor does not resume from Last-Event-ID"
      : `floor would need ${connections} Redis connections (cap ${FLOOR_MAX_REDIS_CONNECTIONS})`)
  }
  if (target === "nchan") {
    const missing = nchanMissing()
    const unsupported = s.transport === "ws" ? "no WebSocket in this configuration"
      : s.mode === "storm" || s.mode === "history" ? "no history or resume from the Redis log"
      : s.publish === "script" && s.mode !== "idle" ? "published over HTTP only: see the -http scenarios"
      : undefined
    if (missing !== undefined || unsupported !== undefined) return emptyResult(s, target, "skipped", `nchan: ${missing ?? unsupported}`)
  }
  if (target === "gateway" && !existsSync(join(ROOT, "src", "main.bun.ts"))) {
    return emptyResult(s, target, "skipped", "gateway not available (no src/main.bun.ts in this checkout)")
  }
  const port = freePort()
  const publisher = target === "nchan"
    ? new NchanPublisher(redis.url, scriptPath, port, Math.max(1, s.publishConnections))
    : s.publish === "http"
    ? new HttpPublisher(redis.url, scriptPath, port, s.publishConnections)
    : new Publisher(redis.url, scriptPath)
  const tasks = tasksOf(s)
  await publisher.redis.flushall()
  /** Storm: events stored before the server starts, enough for the throttled clients to resume
   *  `throttledBehindBytes` behind the head (the script publisher, pipelined). */
  const stored = s.mode === "storm" ? Math.max(s.behind, Math.ceil(s.throttledBehindBytes / s.payloadBytes)) + 100 : 0
  if (stored > 0) await publisher.burst(tasks[0]!, stored, s.payloadBytes)
  if (s.mode === "history") {
    for (let step = 1; step <= s.events; step += 100) {
      await Promise.all(Array.from({ length: Math.min(100, s.events - step + 1) }, (_, k) => publisher.step(tasks[0]!, step + k, s.payloadBytes)))
    }
    await publisher.complete(tasks[0]!)
  }
  const server = spawnChild(serverCommand(target, s.name, port), {
    PORT: String(port), REDIS_URL: redis.url, HEARTBEAT_MS: "15000", HOST: "127.0.0.1",
    HEAP_SNAPSHOT_PATH: heapSnapshotPath(s.name),
  }, ROOT, pin ? "1" : undefined)
  const workers: Worker[] = []
  try {
    if (target === "nchan") await waitForPort(port, 15_000)
    else await waitForLine(server, (l) => l.includes(`"url":"http://127.0.0.1:`), 15_000, `${target} start`)
    drainLines(server)
    if (s.transport === "ws" && !(await wsAvailable(port))) {
      return emptyResult(s, target, "skipped", `${target} has no WebSocket at /api/v1/ws (not available)`)
    }
    if (publisher instanceof HttpPublisher && s.mode !== "idle") await publisher.open()
    // A storm's throttled clients get a load generator of their own: one busy parsing the normal
    // clients' frames resumed their paused links late (0.4–1.9 s in all), and their links idled.
    const ownWorker = s.mode === "storm" && s.throttledClients > 0
    for (let i = 0; i < LOADGEN_PROCESSES + (ownWorker ? 1 : 0); i++) workers.push(await startWorker())
    /** The load generator of connection `k` of `total` (the throttled clients are the last ones). */
    const workerOf = (k: number, total: number): number =>
      ownWorker && k >= total - s.throttledClients ? LOADGEN_PROCESSES : k % LOADGEN_PROCESSES
    await Bun.sleep(300)
    const rssBefore = rssBytes(server.pid)
    const rssPerConnectionKB = () => (rssBytes(server.pid) - rssBefore) / 1024 / Math.max(1, connections - connectFailed)
    const all = targetsOf(s, tasks, target)
    const steps = stepsPerConnection(s)
    const ordered = s.publish === "script"
    const cpu0 = { server: cpuSeconds(server.pid), redis: cpuSeconds(redis.child.pid), machine: machineCpu(), runner: cpuSeconds(process.pid) }
    const lg0 = workers.map((w) => cpuSeconds(w.child.pid))
    const connectStart = wallNow()
    workers.forEach((w, i) => {
      const mine = all.filter((_, k) => workerOf(k, all.length) === i)
      const message: ConnectCommand = {
        cmd: "connect", port, transport: s.transport, targets: mine, steps, latency: s.mode !== "history",
        batch: Math.ceil(s.connectBatch / LOADGEN_PROCESSES), pauseMs: s.connectPauseMs, timeoutMs: CONNECT_TIMEOUT_MS, ordered,
      }
      command(w, message)
    })
    let connected = await timeout(CONNECT_TIMEOUT_MS + 5000, "connect phase", Promise.all(workers.map((w) => awaitEvent(w, "connected"))))
    let expected = steps * connections
    let logReads0 = 0
    let liveDone: Promise<unknown> = Promise.resolve()
    /** Storm: the window starts at the drop. */
    let dropAt: { at: number; cpu: typeof cpu0; lg: number[] } | undefined
    if (s.mode === "storm") {
      // Live events keep coming (steps after the stored ones); after 1 s every client drops at once
      // and resumes from its Last-Event-ID.
      const liveTotal = totalEvents(s)
      liveDone = publisher.atRate(tasks, s.rate, liveTotal, s.payloadBytes, (liveTotal / s.rate) * 1000 + 10_000, stored + 1)
      await Bun.sleep(1000)
      const drop = await stormCommand(s, publisher, tasks[0]!, port, all)
      expected = drop.firstSteps.reduce((sum, first) => sum + stored + liveTotal - first + 1, 0)
      logReads0 = await logReads(publisher)
      dropAt = {
        at: wallNow(), lg: workers.map((w) => cpuSeconds(w.child.pid)),
        cpu: { server: cpuSeconds(server.pid), redis: cpuSeconds(redis.child.pid), machine: machineCpu(), runner: cpuSeconds(process.pid) },
      }
      workers.forEach((w, i) => {
        forget(w, "connected")
        const mine = <A>(xs: A[]): A[] => xs.filter((_, k) => workerOf(k, xs.length) === i)
        const message: StormCommand = {
          ...drop, targets: mine(drop.targets), headers: mine(drop.headers), firstSteps: mine(drop.firstSteps),
          throttles: mine(drop.throttles), groups: mine(drop.groups),
        }
        command(w, message)
      })
      connected = await timeout(CONNECT_TIMEOUT_MS + 5000, "reconnect phase", Promise.all(workers.map((w) => awaitEvent(w, "connected"))))
    }
    const connectFailed = connected.reduce((n, m) => n + Number(m.failed), 0)
    const connectNote = connected.map((m) => m.lastError).filter(Boolean)[0] ?? ""
    const result = emptyResult(s, target, "ok", connectFailed ? `connect failures: ${connectFailed} ${connectNote}` : "")
    result.connectFailed = connectFailed
    let publishStart = dropAt?.at ?? wallNow()
    let cpuStart = dropAt?.cpu ?? { ...cpu0 }
    let lgStart = dropAt?.lg ?? lg0
    if (s.mode === "storm") {
      await liveDone
      result.publishedPerS = s.rate
      await publisher.complete(tasks[0]!)
    } else if (s.mode === "idle") {
      await Bun.sleep(2000)
      result.rssPerConnectionKB = rssPerConnectionKB()
    } else if (s.mode !== "history") {
      await Bun.sleep(500)
      cpuStart = { server: cpuSeconds(server.pid), redis: cpuSeconds(redis.child.pid), machine: machineCpu(), runner: cpuSeconds(process.pid) }
      lgStart = workers.map((w) => cpuSeconds(w.child.pid))
      publishStart = wallNow()
      if (s.mode === "rate") await publisher.atRate(tasks, s.rate, totalEvents(s), s.payloadBytes, (totalEvents(s) / s.rate) * 1000 + 10_000)
      else await publisher.burst(tasks[0]!, s.events, s.payloadBytes)
      result.publishedPerS = totalEvents(s) / ((wallNow() - publishStart) / 1000)
      await Promise.all(tasks.map((t) => publisher.complete(t)))
    }
    if (s.mode !== "idle") {
      await Promise.race([Promise.all(workers.map((w) => awaitEvent(w, "done"))), Bun.sleep(DRAIN_TIMEOUT_MS)])
    }
    const end = wallNow()
    result.serverCpuS = cpuSeconds(server.pid) - cpuStart.server
    result.redisCpuS = cpuSeconds(redis.child.pid) - cpuStart.redis
    result.loadgenCpuS = workers.reduce((sum, w, i) => sum + cpuSeconds(w.child.pid) - lgStart[i]!, 0)
    const machine = machineCpu()
    result.interruptCpuS = machine.interrupts - cpuStart.machine.interrupts
    result.otherCpuS = machine.busy - cpuStart.machine.busy - result.serverCpuS - result.redisCpuS - result.loadgenCpuS -
      (cpuSeconds(process.pid) - cpuStart.runner)
    result.peakRssMB = peakRssBytes(server.pid) / 1024 / 1024
    // After the window, so the CPU figures cover the same span as before.
    if (s.mode === "idle") {
      await Bun.sleep(10_000)
      result.rssSettledPerConnectionKB = rssPerConnectionKB()
    }
    if (s.mode === "storm") result.logReads = (await logReads(publisher)) - logReads0
    result.loadgenMaxCorePct = Math.max(...workers.map((w, i) => cpuSeconds(w.child.pid) - lgStart[i]!)) / ((end - publishStart) / 1000) * 100
    if (profile === "heap" && target === "gateway") await takeHeapSnapshot(server.pid, heapSnapshotPath(s.name))
    result.elapsedS = (end - publishStart) / 1000
    workers.forEach((w) => command(w, { cmd: "report" }))
    const reports = await timeout(10_000, "load generator reports", Promise.all(workers.map((w) => awaitEvent(w, "report"))))
    const hist = makeHistogram()
    const caughtUp = [0, 0]
    let linkMs = 0
    let lateMs = 0
    let lastAt = 0
    let doneAtMax = 0
    let complete = 0
    for (const r of reports) {
      result.delivered += Number(r.delivered)
      result.gaps += Number(r.gaps)
      result.dups += Number(r.dups)
      result.closedEarly += Number(r.closedEarly)
      complete += Number(r.complete)
      result.loadgenUserS += Number(r.userSeconds)
      result.loadgenSystemS += Number(r.systemSeconds)
      lastAt = Math.max(lastAt, Number(r.lastAt))
      doneAtMax = Math.max(doneAtMax, Number(r.doneAtMax))
      mergeSparse(hist, r.hist as Parameters<typeof mergeSparse>[1])
      linkMs = Math.max(linkMs, Number(r.linkMs ?? 0))
      lateMs = Math.max(lateMs, Number(r.lateMs ?? 0))
      ;(r.caughtUpMs as (number | null)[]).forEach((ms, g) => { caughtUp[g] = ms === null ? NaN : Math.max(caughtUp[g]!, ms) })
      if (r.badStatus) result.note += ` bad status ×${r.badStatus}: ${String(r.lastError).slice(0, 80)}`
    }
    result.expected = expected
    if (result.closedEarly > 0) result.note += ` ${result.closedEarly} connections closed before the terminal event`
    if (s.mode === "storm") {
      result.stormCaughtUpS = caughtUp[0]! / 1000
      result.stormThrottledS = s.throttledClients > 0 ? caughtUp[1]! / 1000 : NaN
      result.stormLinkS = s.throttledClients > 0 ? linkMs / 1000 : NaN
      result.stormLoadgenLateS = s.throttledClients > 0 ? lateMs / 1000 : NaN
    }
    if (publisher.ingest) {
      result.ingestP50Ms = percentile(publisher.ingest, 50)
      result.ingestP99Ms = percentile(publisher.ingest, 99)
      result.ingestMaxMs = publisher.ingest.count ? publisher.ingest.max : NaN
    }
    if (s.mode === "rate") result.cpuPerEventUs = (result.serverCpuS / totalEvents(s)) * 1e6
    result.p50Ms = percentile(hist, 50)
    result.p99Ms = percentile(hist, 99)
    result.maxMs = hist.count ? hist.max : NaN
    result.publishErrors = publisher.errors
    if (publisher.errors) result.note += ` publish errors ×${publisher.errors}: ${publisher.lastError.slice(0, 120)}`
    if (lastAt > publishStart) result.deliveriesPerS = result.delivered / ((lastAt - publishStart) / 1000)
    if (s.mode === "history") {
      result.historyAllS = complete === connections ? (doneAtMax - connectStart) / 1000 : NaN
      result.elapsedS = (end - connectStart) / 1000
      if (complete < connections) result.note += ` only ${complete}/${connections} clients got the whole history`
    }
    return result
  } catch (error) {
    const failed = emptyResult(s, target, "error", `${String(error).slice(0, 300)} | server stderr: ${server.stderrTail.slice(-300)}`)
    return failed
  } finally {
    for (const w of workers) command(w, { cmd: "exit" })
    await Promise.all(workers.map((w) => stopChild(w.child, 2000)))
    await stopChild(server, profile ? 10_000 : 3000)
    await publisher.close()
  }
}

/** Log reads Redis has served so far for others than the publisher (INFO commandstats: XRANGE,
 *  XREVRANGE, XREAD calls, minus the one XREVRANGE inside each of the publisher's script calls). */
const logReads = async (publisher: Publisher): Promise<number> => {
  const info = await publisher.redis.info("commandstats")
  let calls = 0
  for (const m of info.matchAll(/^cmdstat_(xrange|xrevrange|xread):calls=(\d+)/gm)) calls += Number(m[2])
  return calls - publisher.appends
}

/** The storm's reconnect: each normal client resumes `behind` events behind the head, each throttled
 *  one `throttledBehindBytes` behind (Last-Event-ID read from the log now, before the drop). */
const stormCommand = async (s: Scenario, publisher: Publisher, task: Task, port: number, paths: string[]): Promise<StormCommand> => {
  const throttledBehind = Math.ceil(s.throttledBehindBytes / s.payloadBytes)
  const recent = (await publisher.redis.xrevrange(`${process.env.REDIS_PREFIX ?? "ts"}:{${task.taskId}}:log`, "+", "-", "COUNT", Math.max(s.behind, throttledBehind) + 1))
  const stepOf = (entry: [string, string[]] | undefined): number => {
    const data = entry?.[1][entry[1].indexOf("data") + 1] ?? ""
    return Number(/"step":(\d+)/.exec(data)?.[1] ?? NaN)
  }
  const head = stepOf(recent[0])
  const normal = recent[Math.min(s.behind, recent.length - 1)]!
  const throttled = recent[Math.min(throttledBehind, recent.length - 1)]!
  const groups = paths.map((_, k) => (k >= paths.length - s.throttledClients ? 1 : 0))
  return {
    cmd: "storm", port, targets: paths, catchUpStep: head, timeoutMs: CONNECT_TIMEOUT_MS,
    groups,
    headers: groups.map((g) => `Last-Event-ID: ${(g ? throttled : normal)[0]}`),
    firstSteps: groups.map((g) => stepOf(g ? throttled : normal) + 1),
    throttles: groups.map((g) => (g ? s.throttleBytesPerS : 0)),
  }
}

const median = (values: number[]): number => {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b)
  return finite.length === 0 ? NaN : finite[Math.floor((finite.length - 1) / 2)]!
}

/** One row from repeated runs: medians of the figures, the worst of the delivery counts. */
const combine = (runs: Result[]): Result => {
  if (runs.length === 1) return runs[0]!
  const ok = runs.filter((r) => r.status === "ok")
  if (ok.length === 0) return runs[0]!
  const worst = ok.reduce((a, b) => (b.delivered - b.expected - b.gaps - b.dups < a.delivered - a.expected - a.gaps - a.dups ? b : a))
  const out: Result & { runs?: Partial<Result>[] } = { ...worst }
  for (const key of ["p50Ms", "p99Ms", "maxMs", "serverCpuS", "loadgenCpuS", "redisCpuS", "peakRssMB", "rssPerConnectionKB",
    "elapsedS", "deliveriesPerS", "historyAllS", "publishedPerS", "loadgenUserS", "loadgenSystemS", "otherCpuS", "interruptCpuS",
    "ingestP50Ms", "ingestP99Ms", "ingestMaxMs", "cpuPerEventUs", "loadgenMaxCorePct", "stormCaughtUpS", "stormThrottledS", "stormLinkS", "stormLoadgenLateS", "logReads", "rssSettledPerConnectionKB"] as const) {
    out[key] = median(ok.map((r) => r[key]))
  }
  out.note = [...new Set(runs.map((r) => r.note).filter(Boolean))].join("; ")
  if (ok.length < runs.length) out.note += ` (${runs.length - ok.length} of ${runs.length} runs failed)`
  out.runs = runs.map(({ status, p99Ms, serverCpuS, delivered, expected, gaps, dups, historyAllS, rssPerConnectionKB, deliveriesPerS }) =>
    ({ status, p99Ms, serverCpuS, delivered, expected, gaps, dups, historyAllS, rssPerConnectionKB, deliveriesPerS }))
  return out
}

// ---- report ---------------------------------------------------------------------------------
const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : "–")
const ratio = (n: number, base: number | undefined): string =>
  base !== undefined && Number.isFinite(n) && Number.isFinite(base) && base > 0 ? ` (${(n / base).toFixed(2)}×)` : ""

const printRow = (cells: string[], widths: number[]): void => {
  console.log(cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "))
}

const HEADER = ["scenario", "target", "delivered/expected", "gaps", "dups", "p50 ms", "p99 ms", "max ms",
  "server CPU s", "peak RSS MB", "loadgen CPU s (max %)", "redis CPU s", "irq CPU s", "other CPU s", "figure"]
const WIDTHS = [15, 7, 20, 5, 5, 7, 16, 8, 15, 11, 20, 11, 9, 11, 42]

const figureOf = (r: Result): string =>
  r.scenario === "reconnect-storm"
    ? `caught up ${fmt(r.stormCaughtUpS, 2)} s, throttled ${fmt(r.stormThrottledS, 2)} s (link ${fmt(r.stormLinkS, 2)} s, ` +
      `load-gen late ${fmt(r.stormLoadgenLateS, 2)} s), ${fmt(r.logReads, 0)} log reads`
    : r.scenario.endsWith("-http")
    ? `pub ${fmt(r.publishedPerS, 0)} ev/s, ingest p50/p99 ${fmt(r.ingestP50Ms, 1)}/${fmt(r.ingestP99Ms, 1)} ms, ${fmt(r.cpuPerEventUs, 0)} µs CPU/ev`
    : r.scenario === "idle" ? `${fmt(r.rssPerConnectionKB, 2)} KB/conn (${fmt(r.rssSettledPerConnectionKB, 2)} at 12 s)`
    : r.scenario === "history" ? `all history in ${fmt(r.historyAllS, 2)} s`
    : r.scenario === "burst" ? `${fmt(r.deliveriesPerS / 1000, 0)}k deliveries/s (pub ${fmt(r.publishedPerS / 1000, 1)}k ev/s)`
    : `${fmt(r.deliveriesPerS / 1000, 0)}k deliveries/s`

const main = async (): Promise<void> => {
  mkdirSync(join(RESULTS, "profiles"), { recursive: true })
  if (!existsSync(scriptPath)) throw new Error(`append script not found at ${scriptPath} (set APPEND_LUA)`)
  const redis = await startRedis(ROOT)
  const results: Result[] = []
  const started = new Date().toISOString()
  try {
    for (const s of selected) {
      console.error(`# ${s.name}: ${s.description}${scale !== 1 ? ` (scaled ×${scale}: ${s.tasks} tasks × ${s.subscribersPerTask})` : ""}`)
      const runs = new Map<Target, Result[]>(targets.map((t) => [t, []]))
      for (let round = 1; round <= repeat; round++) {
        for (const target of targets) {
          if (runs.get(target)![0]?.status === "skipped") continue
          const r = await measure(s, target, redis)
          console.error(`#   ${target}${repeat > 1 ? ` (run ${round}/${repeat})` : ""}: ${r.status} ${r.note}`)
          runs.get(target)!.push(r)
        }
      }
      for (const target of targets) results.push(combine(runs.get(target)!))
    }
  } finally {
    await redis.stop()
  }
  const shown = [...selected]
  if (flag("update") === "true" && existsSync(join(RESULTS, "latest.json"))) {
    // Keep the other scenarios of the previous run (e.g. re-measure only ws-fanout).
    const previous = JSON.parse(readFileSync(join(RESULTS, "latest.json"), "utf8")) as { scenarios: Scenario[]; results: Result[] }
    const kept = previous.scenarios.filter((p) => !selected.some((s) => s.name === p.name))
    shown.unshift(...kept)
    shown.sort((a, b) => all.findIndex((s) => s.name === a.name) - all.findIndex((s) => s.name === b.name))
    results.unshift(...previous.results.filter((r) => kept.some((k) => k.name === r.scenario)))
  }
  console.log("")
  printRow(HEADER, WIDTHS)
  const gatewayFanout = results.find((r) => r.scenario === "fanout" && r.target === "gateway" && r.status === "ok")
  const verdicts: { scenario: string; target: string; met: boolean | undefined }[] = []
  for (const s of shown) {
    const rows = results.filter((r) => r.scenario === s.name)
    const ceiling = rows.find((r) => r.target === "ceiling" && r.status === "ok")
    for (const r of rows) {
      if (r.status !== "ok") {
        printRow([r.scenario, r.target, `${r.status}: ${r.note}`], [15, 7, 0])
        continue
      }
      const base = r.target === "ceiling" ? undefined : ceiling
      printRow([
        r.scenario, r.target, `${r.delivered}/${r.expected}`, String(r.gaps), String(r.dups), fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2) + ratio(r.p99Ms, base?.p99Ms), fmt(r.maxMs, 0), fmt(r.serverCpuS, 2) + ratio(r.serverCpuS, base?.serverCpuS),
        fmt(r.peakRssMB, 0), `${fmt(r.loadgenCpuS, 2)} (${fmt(r.loadgenMaxCorePct, 0)}%)`, fmt(r.redisCpuS, 2), fmt(r.interruptCpuS, 2), fmt(r.otherCpuS, 2), figureOf(r),
      ], WIDTHS)
    }
    const gw = rows.find((r) => r.target === "gateway" && r.status === "ok")
    if (gw) {
      const t = targetOf(s, gw, ceiling, gatewayFanout, rows.find((r) => r.target === "nchan" && r.status === "ok"))
      verdicts.push({ scenario: s.name, target: t.text, met: t.met })
    }
  }
  console.log("")
  for (const v of verdicts) console.log(`target ${v.scenario}: ${v.target} → ${v.met === undefined ? "n/a" : v.met ? "MET" : "MISSED"}`)
  // Ingest alone: the HTTP scenario's server CPU minus the same traffic published by the script.
  for (const target of targets) {
    const viaHttp = results.find((r) => r.scenario === "many-http" && r.target === target && r.status === "ok")
    const viaScript = results.find((r) => r.scenario === "many" && r.target === target && r.status === "ok")
    const events = shown.find((s) => s.name === "many-http")
    if (viaHttp && viaScript && events && totalEvents(events) === totalEvents(shown.find((s) => s.name === "many")!)) {
      const us = ((viaHttp.serverCpuS - viaScript.serverCpuS) / totalEvents(events)) * 1e6
      console.log(`ingest CPU per request (${target}): ${fmt(us, 0)} µs = (many-http − many) server CPU / ${totalEvents(events)} requests`)
    }
  }
  console.log("")
  for (const s of shown) {
    console.log(JSON.stringify({ scenario: s.name, size: s, results: results.filter((r) => r.scenario === s.name) }))
  }
  const machine = { cpus: navigator.hardwareConcurrency, bun: Bun.version, platform: process.platform, loadAverageAtEnd: readFileSync("/proc/loadavg", "latin1").trim() }
  writeFileSync(join(RESULTS, "latest.json"), JSON.stringify({ started, scale, repeat, pin, machine, scenarios: shown, results, verdicts }, null, 2) + "\n")
  console.error(`# wrote bench/results/latest.json`)
}

await main()
process.exit(0)
