// `npm run chaos [-- --duration=180 --gateways=3 --tasks=6 --clients=200 --fault-every=10 --seed=16]`
//
// Everything at once, under faults (issue 16): several gateways on a Sentinel-managed Redis
// (master + replica + 3 sentinels, REDIS_WAIT_REPLICAS=1), SSE and WebSocket clients (some
// reconnecting at random, some pausing and resuming), publishers over HTTP, the TypeScript SDK and
// the append script with retries — while faults are injected one at a time: SIGKILL and restart
// of a gateway, a SIGTERM drain and restart, SENTINEL FAILOVER, CLIENT KILL TYPE pubsub, a restart
// of the replica. Then every task ends, and for every client and task it checks that every
// acknowledged event arrived exactly once and in order. Prints a table; exits 1 on any loss,
// duplicate or reordering (printing the first case). Bounded by --duration; loopback only.
// The fixtures are the tests' (tests/support); the CI version is tests/chaos/chaos.test.ts.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { Result } from "effect"
import { decodeDraft } from "../../src/events/draft.ts"
import { compareIds, parseEventId } from "../../src/events/envelope.ts"
import { appendErrorOf, defineScripts, runAppend, touchTaskIndex } from "../../src/log/appendScript.ts"
import { createClient } from "../../src/log/redisTarget.ts"
import { parseRedisUrl, type RedisTarget } from "../../src/redisUrl.ts"
import { PublishError, redisPublisher } from "../../src/publisher/index.ts"
import { taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { sleep } from "../support/ports.ts"
import { startRedisSentinel } from "../support/redisSentinel.ts"
import { eventFrames, openSseSocket } from "../support/sse.ts"
import { openWs } from "../support/ws.ts"
import { builtinRegistry } from "../../src/events/registry.ts"

const arg = (name: string, fallback: number) => {
  const found = process.argv.find((text) => text.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.slice(name.length + 3))
}
const options = {
  durationS: arg("duration", 180),
  gateways: arg("gateways", 3),
  tasks: arg("tasks", 6),
  clients: arg("clients", 200),
  faultEveryS: arg("fault-every", 10),
  seed: arg("seed", 16)
}

// A small seeded generator, so a run's choices (not its timing) repeat.
let state = options.seed >>> 0 || 1
const random = () => {
  state ^= state << 13
  state ^= state >>> 17
  state ^= state << 5
  return (state >>> 0) / 4294967296
}
const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]
const between = (min: number, max: number) => min + random() * (max - min)

const AGENT = "chaos"
const TERMINAL = "WorkflowCompleted"

// ---- the system under test -----------------------------------------------------------------

// Deployed as docs/deploy.md says: a master without its replica refuses writes (no event stored on
// an old master that a failover then drops, delivered live meanwhile, which moved clients past acknowledged events).
const sentinel = await startRedisSentinel({ minReplicasToWrite: 1 })
const gatewayEnv = {
  REDIS_URL: sentinel.url,
  REDIS_WAIT_REPLICAS: "1",
  REDIS_WAIT_TIMEOUT_MS: "1000",
  REDIS_COMMAND_TIMEOUT_MS: "2000",
  DRAIN_MS: "3000",
  HEARTBEAT_MS: "2000",
  LOG_LEVEL: "info"
}

/** Every gateway process started, for their logs when the run fails (`--logs=DIR`). */
const launched: Array<Gateway> = []
const launch = async () => {
  const gateway = await startGateway(gatewayEnv)
  launched.push(gateway)
  return gateway
}

interface Slot {
  gateway: Gateway | undefined
  peakRssKb: number
  incarnations: number
}
const slots: Array<Slot> = []
for (let i = 0; i < options.gateways; i++) slots.push({ gateway: await launch(), peakRssKb: 0, incarnations: 1 })
const live = () => slots.filter((slot) => slot.gateway !== undefined)
const anyGateway = async (): Promise<Gateway> => {
  for (;;) {
    const up = live()
    if (up.length > 0) return pick(up).gateway!
    await sleep(50)
  }
}

const rssSampler = setInterval(() => {
  for (const slot of slots) {
    const pid = slot.gateway?.process.pid
    if (pid === undefined) continue
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
      slot.peakRssKb = Math.max(slot.peakRssKb, kb)
    } catch {
      // the process just exited
    }
  }
}, 500)

// ---- publishers ------------------------------------------------------------------------------

type PublisherKind = "http" | "sdk" | "script"
interface TaskState {
  readonly taskId: string
  readonly publisher: PublisherKind
  readonly acked: Array<string>
  published: number
}
const tasks: Array<TaskState> = Array.from({ length: options.tasks }, (_, i) => ({
  taskId: `chaos-${Date.now().toString(36)}-${i}`,
  publisher: (["http", "sdk", "script"] as const)[i % 3],
  acked: [],
  published: 0
}))

const sdk = redisPublisher({ redis: sentinel.url, waitReplicas: 1, waitTimeoutMs: 1000 })
const scriptClient = createClient(parseRedisUrl(sentinel.url) as RedisTarget, { failFast: false })
scriptClient.on("error", () => {})
defineScripts(scriptClient)
const scriptSettings = {
  registry: builtinRegistry, prefix: "ts", historyMax: 100_000, retentionSeconds: 3600, idempotencySeconds: 3600, taskIndexMax: 10_000,
  inflightSeconds: 3600, taskIdleSeconds: 3600, waitReplicas: 1, waitTimeoutMs: 1000
}

/** Append one event, retried with its idempotency key until acknowledged; its id. */
const publishOne = async (task: TaskState, type: string, data: Record<string, unknown>, key: string): Promise<string> => {
  for (;;) {
    task.published++
    try {
      if (task.publisher === "http") {
        const gateway = await anyGateway()
        const response = await fetch(`${gateway.url}${taskPath(AGENT, task.taskId)}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type, data, idempotency_key: key }),
          signal: AbortSignal.timeout(5000)
        })
        if (response.status === 201) return (await response.json()).ids[0]
        if (response.status !== 503 && response.status !== 429) throw new Error(`http publish: ${response.status} ${await response.text()}`)
      } else if (task.publisher === "sdk") {
        return (await sdk.publish({ agentId: AGENT, taskId: task.taskId }, type as never, data as never, { idempotencyKey: key }))!
      } else {
        const draft = decodeDraft(builtinRegistry, { type, data, idempotency_key: key })
        if (Result.isFailure(draft)) throw new Error(draft.failure.message)
        const ids = await runAppend(scriptClient, scriptSettings, { agentId: AGENT, taskId: task.taskId }, [draft.success])
        await touchTaskIndex(scriptClient, scriptSettings, { agentId: AGENT, taskId: task.taskId }, [draft.success], ids).catch(() => undefined)
        const [id] = ids
        return id
      }
    } catch (error) {
      const retryable = error instanceof PublishError
        ? error.code === "unavailable" || error.code === "replication_timeout"
        : task.publisher === "script"
        ? ["LogUnavailable", "ReplicationTimeout"].includes(appendErrorOf(error, { agentId: "chaos", taskId: task.taskId })._tag)
        : !(error instanceof Error && error.message.startsWith("http publish"))
      if (!retryable) throw error
    }
    await sleep(between(50, 250))
  }
}

let publishing = true
const publishers = tasks.map(async (task) => {
  for (let step = 0; publishing; step++) {
    task.acked.push(await publishOne(task, "WorkflowStepStarted", { step }, `step-${step}`))
    await sleep(between(20, 80))
  }
})

// ---- clients ---------------------------------------------------------------------------------

/** pausing: a WebSocket that pauses and resumes its subscription; slow: an SSE client that reads with pauses. */
type Behaviour = "steady" | "reconnecting" | "pausing" | "slow"
interface Client {
  readonly transport: "sse" | "ws"
  readonly behaviour: Behaviour
  readonly task: TaskState
  readonly ids: Array<string>
  done: boolean
  reconnects: number
  maxReconnectMs: number
  /** Each connection: when, to which gateway, resumed after which id, what came (for a failure's report). */
  readonly segments: Array<Segment>
  /** What the open connection has received so far (for the report of a client that never finished). */
  received?: () => string
}
interface Segment {
  readonly at: number
  readonly gateway: string
  readonly after: string | undefined
  first?: string
  last?: string
  count?: number
  end?: string
}
const clock0 = Date.now()
const record = (client: Client, gateway: Gateway, after: string | undefined): Segment => {
  const segment: Segment = { at: Date.now() - clock0, gateway: gateway.url, after }
  client.segments.push(segment)
  return segment
}
const closeSegment = (segment: Segment, ids: ReadonlyArray<string>, end: string) => {
  segment.first = ids[0]
  segment.last = ids.at(-1)
  segment.count = ids.length
  segment.end = `${end} at ${Date.now() - clock0} ms`
}

const followSse = async (client: Client) => {
  let lostAt: number | undefined
  while (!client.done) {
    const gateway = await anyGateway()
    const last = client.ids.at(-1)
    const stream = await openSseSocket(
      `${gateway.url}${taskPath(AGENT, client.task.taskId)}/events/stream?format=envelope`,
      last === undefined ? {} : { "last-event-id": last },
      client.behaviour === "slow" ? { pauseMs: between(20, 200) } : {}
    ).catch(() => undefined)
    if (stream === undefined || stream.status !== 200) {
      stream?.close()
      if (stream?.status === 204) client.done = true
      await sleep(between(50, 200))
      continue
    }
    if (lostAt !== undefined) client.maxReconnectMs = Math.max(client.maxReconnectMs, Date.now() - lostAt)
    const segment = record(client, gateway, last)
    client.received = () => {
      const frames = stream.frames
      const events = eventFrames(frames)
      return `${frames.length} frames (${events.length} events, the last ${events.at(-1)?.id} ${events.at(-1)?.event}), the last frame: ${JSON.stringify(frames.at(-1))}`
    }
    const cut = client.behaviour === "reconnecting" ? setTimeout(() => stream.close(), between(500, 5000)) : undefined
    await stream.ended
    client.received = undefined
    clearTimeout(cut)
    const ids: Array<string> = []
    for (const frame of eventFrames(stream.frames)) {
      if (frame.id !== undefined) ids.push(frame.id)
      if (frame.event === TERMINAL) client.done = true
    }
    client.ids.push(...ids)
    closeSegment(segment, ids, client.done ? "ended" : "cut")
    if (!client.done) {
      lostAt = Date.now()
      client.reconnects++
    }
  }
}

const followWs = async (client: Client) => {
  let lostAt: number | undefined
  while (!client.done) {
    const gateway = await anyGateway()
    const ws = await openWs(gateway.url).catch(() => undefined)
    if (ws === undefined) {
      await sleep(between(50, 200))
      continue
    }
    const last = client.ids.at(-1)
    const segment = record(client, gateway, last)
    client.received = () => {
      const events = ws.frames.filter((frame) => frame.op === "event")
      return `${ws.frames.length} frames (${events.length} events, the last ${events.at(-1)?.event.id}), the last frame: ${JSON.stringify(ws.frames.at(-1))}`
    }
    ws.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: client.task.taskId, ...(last === undefined ? {} : { since: last }) })
    if (lostAt !== undefined) client.maxReconnectMs = Math.max(client.maxReconnectMs, Date.now() - lostAt)
    const cut = client.behaviour === "reconnecting" ? setTimeout(() => ws.close(), between(500, 5000)) : undefined
    const pauses = client.behaviour === "pausing"
      ? setInterval(() => {
        ws.send({ op: "pause", sub: "s" })
        setTimeout(() => ws.send({ op: "resume", sub: "s" }), between(100, 800))
      }, between(1000, 3000))
      : undefined
    await Promise.race([ws.closed, ws.waitFor((frames) => frames.some((frame) => frame.op === "end"), 3_600_000).catch(() => undefined)])
    client.received = undefined
    clearTimeout(cut)
    clearInterval(pauses)
    const ids: Array<string> = []
    for (const frame of ws.frames) {
      if (frame.op === "event" && frame.event.id !== undefined) ids.push(frame.event.id)
      if (frame.op === "end") client.done = true
    }
    client.ids.push(...ids)
    closeSegment(segment, ids, client.done ? "ended" : "cut")
    ws.close()
    if (!client.done) {
      lostAt = Date.now()
      client.reconnects++
    }
  }
}

const clients: Array<Client> = Array.from({ length: options.clients }, (_, i) => ({
  transport: i % 2 === 0 ? "sse" : "ws",
  behaviour: pick(["steady", "steady", "reconnecting", i % 2 === 0 ? "slow" : "pausing"] as const),
  task: tasks[i % tasks.length],
  ids: [],
  done: false,
  reconnects: 0,
  maxReconnectMs: 0,
  segments: []
}))
const following = clients.map((client) => (client.transport === "sse" ? followSse(client) : followWs(client)))

// ---- faults ------------------------------------------------------------------------------------

const faults = new Map<string, number>()
const timeline: Array<string> = []
const restartSlot = async (slot: Slot, signal: "SIGKILL" | "SIGTERM") => {
  const gateway = slot.gateway!
  slot.gateway = undefined
  if (signal === "SIGKILL") {
    const exited = new Promise((resolve) => gateway.process.once("exit", resolve))
    gateway.process.kill("SIGKILL")
    await exited
  } else {
    await gateway.stop("SIGTERM")
  }
  await sleep(between(200, 1500))
  // A start that fails (a busy machine: no "listening" within 15 s) is tried again, so the slot is
  // not lost for the rest of the run; the last failure is the fault's.
  for (let attempt = 1; ; attempt++) {
    try {
      slot.gateway = await launch()
      break
    } catch (error) {
      if (attempt === 3) throw error
    }
  }
  slot.incarnations++
}
const injections: Record<string, () => Promise<unknown>> = {
  "gateway SIGKILL + restart": () => restartSlot(pick(live()), "SIGKILL"),
  "gateway SIGTERM drain + restart": () => restartSlot(pick(live()), "SIGTERM"),
  // Once the sentinels count a replica healthy: a SENTINEL FAILOVER without one (the replica just
  // restarted, or the old master still syncing after the last failover) is aborted, and never retried.
  "SENTINEL FAILOVER": async () => {
    await sentinel.settled()
    return sentinel.failover()
  },
  "CLIENT KILL TYPE pubsub": async () => sentinel.node(await sentinel.master()).call("CLIENT", "KILL", "TYPE", "pubsub"),
  "replica restart": () => sentinel.restartReplica()
}

const started = Date.now()
const deadline = started + options.durationS * 1000
const faultLoop = (async () => {
  while (Date.now() < deadline - 5000) {
    await sleep(options.faultEveryS * 1000 * between(0.5, 1.5))
    if (Date.now() >= deadline - 5000 || live().length < 2) continue
    const kind = pick(Object.keys(injections))
    const at = Date.now() - clock0
    // A fault that could not be injected is said, not fatal: the run goes on and still checks everything.
    const failure = await injections[kind]().then(() => undefined, (error: unknown) => String(error).split("\n").slice(0, 3).join(" "))
    timeline.push(`${at}–${Date.now() - clock0} ms: ${kind}${failure === undefined ? "" : ` (failed: ${failure})`}`)
    const counted = failure === undefined ? kind : `${kind} (failed)`
    faults.set(counted, (faults.get(counted) ?? 0) + 1)
  }
})()

// ---- the end ---------------------------------------------------------------------------------

await faultLoop
await sleep(Math.max(0, deadline - Date.now()))
publishing = false
await Promise.all(publishers)
for (const task of tasks) task.acked.push(await publishOne(task, TERMINAL, {}, "done"))
const settled = await Promise.race([Promise.all(following).then(() => true), sleep(60_000).then(() => false)])
clearInterval(rssSampler)

interface Case {
  readonly client: string
  /** The client it is about; none for the log's. */
  readonly of?: Client
  readonly problem: string
  readonly detail: string
  /** The id it is about (of a reordering, the later one). */
  readonly id: string
}
const nameOf = (client: Client) => `${client.transport} client ${clients.indexOf(client)} (${client.behaviour}) of ${client.task.taskId}`
const cases: Array<Case> = []
let lost = 0
let duplicated = 0
let reordered = 0
let deliveries = 0
for (const client of clients) {
  const name = nameOf(client)
  deliveries += client.ids.length
  const seen = new Set<string>()
  for (const [n, id] of client.ids.entries()) {
    if (seen.has(id)) {
      duplicated++
      cases.push({ client: name, of: client, problem: "duplicate", detail: id, id })
    }
    seen.add(id)
    if (n > 0 && compareIds(parseEventId(client.ids[n - 1])!, parseEventId(id)!) >= 0) {
      reordered++
      cases.push({ client: name, of: client, problem: "reordered", detail: `${client.ids[n - 1]} then ${id}`, id })
    }
  }
  for (const id of client.task.acked) {
    if (!seen.has(id)) {
      lost++
      cases.push({ client: name, of: client, problem: "lost", detail: id, id })
    }
  }
}
// The log itself holds every acknowledged event.
const master = sentinel.node(await sentinel.master())
let lostFromLog = 0
/** Events a client got that the log does not hold: appended on a master that a failover then dropped, never acknowledged. */
const phantoms = new Map<Client, Array<string>>()
for (const task of tasks) {
  const stored = new Set(((await master.xrange(`ts:{${task.taskId}}:log`, "-", "+")) as Array<[string, unknown]>).map(([id]) => id))
  for (const client of clients) {
    if (client.task !== task) continue
    const unknown = client.ids.filter((id) => !stored.has(id))
    if (unknown.length > 0) phantoms.set(client, unknown)
  }
  for (const id of task.acked) {
    if (!stored.has(id)) {
      lostFromLog++
      cases.push({ client: `the log of ${task.taskId}`, problem: "lost", detail: id, id })
    }
  }
}

const rows: Array<[string, string]> = [
  ["duration", `${Math.round((Date.now() - started) / 1000)} s`],
  ["gateways", `${options.gateways} (${slots.map((slot) => slot.incarnations).join("/")} incarnations)`],
  ...[...faults].map(([kind, count]): [string, string] => [`fault: ${kind}`, String(count)]),
  ["events published (attempts)", String(tasks.reduce((sum, task) => sum + task.published, 0))],
  ["events acknowledged", String(tasks.reduce((sum, task) => sum + task.acked.length, 0))],
  ["clients (sse/ws)", `${clients.length} (${clients.filter((c) => c.transport === "sse").length}/${clients.filter((c) => c.transport === "ws").length})`],
  ["clients finished", `${clients.filter((c) => c.done).length}${settled ? "" : " (some did not finish within 60 s)"}`],
  ["reconnects", String(clients.reduce((sum, c) => sum + c.reconnects, 0))],
  ["deliveries", String(deliveries)],
  ["lost (client / log)", `${lost} / ${lostFromLog}`],
  ["duplicated", String(duplicated)],
  ["reordered", String(reordered)],
  ["delivered, not in the log", `${[...phantoms.values()].reduce((sum, ids) => sum + ids.length, 0)} (${phantoms.size} clients)`],
  ["max reconnect time", `${Math.max(0, ...clients.map((c) => c.maxReconnectMs))} ms`],
  ...slots.map((slot, i): [string, string] => [`peak RSS gateway ${i}`, `${Math.round(slot.peakRssKb / 1024)} MB`])
]
const width = Math.max(...rows.map(([name]) => name.length))
console.log(rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join("\n"))
console.log(JSON.stringify({ chaos: Object.fromEntries(rows), options }))
const failed = cases.length > 0 || !settled
const logDir = process.argv.find((text) => text.startsWith("--logs="))?.slice("--logs=".length)
if (failed && logDir !== undefined) {
  mkdirSync(logDir, { recursive: true })
  for (const [i, gateway] of launched.entries()) writeFileSync(`${logDir}/gateway-${i}-${new URL(gateway.url).port}.log`, gateway.output())
}
const unfinished = clients.findIndex((c) => !c.done)
if (unfinished >= 0) {
  const client = clients[unfinished]
  console.log(`FAILED: ${clients.filter((c) => !c.done).length} clients never received the terminal event; the first: ${client.transport} client ${unfinished} (${client.behaviour}), ${client.ids.length} of ${client.task.acked.length} events, ${client.reconnects} reconnects; ${client.received === undefined ? "no connection open" : `its open connection got ${client.received()}`}`)
} else if (cases.length > 0) console.log(`FAILED: first case: ${cases[0].problem} ${cases[0].detail} at ${cases[0].client}`)
else console.log("OK: every acknowledged event arrived exactly once, in order, at every client")
if (failed) {
  // What it takes to find the cause: the faults' times, and for the first cases the client's connections.
  console.log(`faults:\n  ${timeline.join("\n  ")}`)
  for (const found of cases.slice(0, 10)) {
    console.log(`${found.problem} ${found.detail} at ${found.client}`)
    const client = found.of
    if (client === undefined) continue
    const id = parseEventId(found.id)!
    const at = client.ids.findIndex((got) => compareIds(parseEventId(got)!, id) > 0)
    if (at >= 0) console.log(`  got around it: ${client.ids.slice(Math.max(0, at - 3), at + 3).join(" ")}`)
    for (const segment of client.segments) console.log(`  ${JSON.stringify(segment)}`)
  }
}
for (const [client, ids] of [...phantoms].slice(0, 10)) console.log(`not in the log, delivered to ${nameOf(client)}: ${ids.slice(0, 5).join(" ")}`)

for (const slot of slots) await slot.gateway?.stop()
await sdk.close()
scriptClient.disconnect()
await sentinel.stop()
process.exit(failed ? 1 : 0)
