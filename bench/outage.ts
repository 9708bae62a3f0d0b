// Redis commands during an outage (SPEC §8.4), a bounded measurement: 1000 SSE clients follow
// TASKS tasks through one gateway whose Redis sits behind a counting proxy. For 10 s the proxy
// answers every data command with an error while the subscriber connection is cut and comes back
// (so every stream must catch up from the log, and every catch-up read fails); then Redis answers
// again. Prints the commands per second the gateway sent during the outage and after it.
//
//   bun bench/outage.ts            (CLIENTS=1000 TASKS=1 OUTAGE_S=10)
import { spawn } from "node:child_process"
import { connect, createServer, type Socket } from "node:net"
import { Redis } from "ioredis"
import { startGateway } from "../tests/support/gateway.ts"
import { eventually, freePort, sleep } from "../tests/support/ports.ts"
import { openSseSocket } from "../tests/support/sse.ts"

const CLIENTS = Number(process.env.CLIENTS ?? 1000)
const TASKS = Number(process.env.TASKS ?? 1)
const OUTAGE_S = Number(process.env.OUTAGE_S ?? 10)
/** Commands that keep working during the outage: connection set-up and the subscriber's. */
const PASSING = new Set(["subscribe", "ssubscribe", "unsubscribe", "sunsubscribe", "ping", "info", "client", "select", "hello", "auth", "cluster"])

/** The names of the complete RESP commands at the start of `buffer`, and the bytes they take. */
const parseCommands = (buffer: Buffer): { names: Array<string>; used: number } => {
  const names: Array<string> = []
  let offset = 0
  for (;;) {
    let at = offset
    const line = (): string | undefined => {
      const end = buffer.indexOf("\r\n", at)
      if (end < 0) return undefined
      const text = buffer.subarray(at, end).toString()
      at = end + 2
      return text
    }
    const head = line()
    if (head === undefined || !head.startsWith("*")) return { names, used: offset }
    let name = ""
    for (let i = 0, n = Number(head.slice(1)); i < n; i++) {
      const size = line()
      if (size === undefined) return { names, used: offset }
      const length = Number(size.slice(1))
      if (buffer.length < at + length + 2) return { names, used: offset }
      if (i === 0) name = buffer.subarray(at, at + length).toString().toLowerCase()
      at += length + 2
    }
    names.push(name)
    offset = at
  }
}

const redisPort = await freePort()
const redisServer = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
const admin = new Redis(redisPort, "127.0.0.1", { retryStrategy: () => 100 })
admin.on("error", () => {})
await eventually(() => admin.ping().then(() => true, () => false), 10_000, "redis-server")

let failing = false
let sent = 0
let failed = 0
const sockets = new Set<Socket>()
const proxy = createServer((client) => {
  const upstream = connect(redisPort, "127.0.0.1")
  sockets.add(client)
  let pending: Buffer = Buffer.alloc(0)
  client.on("data", (data: Buffer) => {
    pending = pending.length === 0 ? data : Buffer.concat([pending, data])
    const { names, used } = parseCommands(pending)
    const whole = pending.subarray(0, used)
    pending = pending.subarray(used)
    sent += names.length
    if (!failing || names.every((name) => PASSING.has(name))) return void upstream.write(whole)
    failed += names.length
    client.write(names.map(() => "-ERR outage (simulated by bench/outage.ts)\r\n").join(""))
  })
  upstream.on("data", (data) => client.write(data))
  const close = () => {
    sockets.delete(client)
    client.destroy()
    upstream.destroy()
  }
  client.on("close", close)
  upstream.on("close", close)
  client.on("error", () => {})
  upstream.on("error", () => {})
})
const proxyPort = await freePort()
await new Promise<void>((resolve) => proxy.listen(proxyPort, "127.0.0.1", resolve))

const gateway = await startGateway({ REDIS_URL: `redis://127.0.0.1:${proxyPort}`, MAX_CONNECTIONS: "0" })
try {
  const tasks = Array.from({ length: TASKS }, (_, i) => `outage-${Date.now().toString(36)}-${i}`)
  const post = (task: string, step: number) =>
    fetch(`${gateway.url}/api/v1/agents/agent-o/tasks/${task}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "WorkflowStepStarted", data: { step } })
    })
  for (const task of tasks) await post(task, 1)
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => openSseSocket(`${gateway.url}/api/v1/agents/agent-o/tasks/${tasks[i % TASKS]}/events/stream`))
  )
  const steps = (n: number) => Promise.all(clients.map((client) => client.waitFor((frames) => frames.filter((f) => f.event === "WorkflowStepStarted").length >= n, 30_000)))
  await steps(1)
  console.log(`${CLIENTS} SSE clients on ${TASKS} task(s) are live`)

  failing = true
  const before = { sent, failed }
  await admin.call("CLIENT", "KILL", "TYPE", "pubsub")
  const perSecond: Array<number> = []
  for (let s = 0; s < OUTAGE_S; s++) {
    const at = sent
    await sleep(1000)
    perSecond.push(sent - at)
  }
  const outage = { sent: sent - before.sent, failed: failed - before.failed }
  failing = false
  const recovered = Date.now()
  const afterStart = sent
  for (const task of tasks) await post(task, 2)
  await steps(2)
  const caughtUpMs = Date.now() - recovered
  await sleep(Math.max(0, 2000 - caughtUpMs))
  console.log(`outage of ${OUTAGE_S} s: ${outage.sent} commands sent (${outage.failed} failed), ${(outage.sent / OUTAGE_S).toFixed(1)}/s; per second: ${perSecond.join(" ")}`)
  console.log(`after it: every client had the next event ${caughtUpMs} ms after Redis answered again; ${sent - afterStart} commands in the first 2 s`)
  for (const client of clients) client.close()
} finally {
  await gateway.stop()
  proxy.close()
  for (const socket of sockets) socket.destroy()
  admin.disconnect()
  redisServer.kill("SIGKILL")
}
