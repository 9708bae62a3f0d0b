/**
 * Gateway CPU per single-event `POST …/events`, with no subscriber (no fan-out): the ingest
 * path alone. Each argument is a checkout (a directory with src/main.bun.ts; `<dir>:ceiling`
 * runs that checkout's bench/baselines/ceiling.ts instead). The checkouts take turns, ROUNDS
 * times, on one redis-server, under the same closed-loop load (8 keep-alive connections, one
 * request in flight each, 500 tasks, 300-byte payloads), so a busy machine weighs on all alike.
 *
 *   ROUNDS=3 N=8000 bun bench/ingest-cpu.ts /path/to/old-checkout . .:ceiling
 *
 * Each server first takes WARMUP requests (30 000 by default), unmeasured: JavaScriptCore keeps
 * compiling the gateway's hot code (on its JITWorker thread, counted in the process's CPU) for
 * tens of thousands of requests, so a short warm-up measures the compiler more than the path
 * (after 3000 requests the gateway cost ≈ 2× its steady state, the ceiling ≈ 1.5×).
 */
import { readFileSync } from "node:fs"

const dirs = process.argv.slice(2)
const rounds = Number(process.env.ROUNDS ?? 3)
const requests = Number(process.env.N ?? 8000)
const warmup = Number(process.env.WARMUP ?? 30000)
const CONNECTIONS = 8
const basePort = 10000 + Math.floor(Math.random() * 9000)

/** utime + stime of a process, in seconds. */
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const pad = "x".repeat(300)
let offset = 0
let refused = 0

/** `count` requests over CONNECTIONS connections; 503s (Redis not answering yet) are counted, not fatal. */
const publish = async (url: string, count: number): Promise<void> => {
  let next = 0
  const start = offset
  offset += count
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    for (let i = next++; i < count; i = next++) {
      const step = start + i
      const response = await fetch(`${url}/api/v1/agents/bench/tasks/t${step % 500}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "WorkflowStepStarted", data: { step, pad } })
      })
      const text = await response.text()
      if (response.status === 503) refused++
      else if (response.status !== 201) throw new Error(`${response.status}: ${text}`)
    }
  }))
}

const redis = Bun.spawn(["redis-server", "--port", String(basePort), "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" })
const figures = new Map<string, Array<number>>()
try {
  await Bun.sleep(300)
  for (let round = 0; round < rounds; round++) {
    for (const [n, target] of dirs.entries()) {
      const ceiling = target.endsWith(":ceiling")
      const port = basePort + 1 + round * dirs.length + n
      const server = Bun.spawn([process.execPath, ceiling ? "bench/baselines/ceiling.ts" : "src/main.bun.ts"], {
        cwd: target.replace(/:ceiling$/, ""),
        env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", REDIS_URL: `redis://127.0.0.1:${basePort}`, REDIS_PREFIX: `b${round}x${n}` },
        stdout: "ignore",
        stderr: "ignore"
      })
      try {
        const url = `http://127.0.0.1:${port}`
        for (let i = 0; i < 400; i++) {
          const ready = await fetch(`${url}/readyz`).then((r) => r.status < 500, () => false)
          if (ready) break
          await Bun.sleep(100)
        }
        await publish(url, warmup)
        refused = 0
        const before = cpuSeconds(server.pid)
        const started = performance.now()
        await publish(url, requests)
        const perRequest = Math.round(((cpuSeconds(server.pid) - before) / requests) * 1e6)
        figures.set(target, [...(figures.get(target) ?? []), perRequest])
        console.log(`${target} round ${round}: ${perRequest} µs CPU/request, ${Math.round(requests / ((performance.now() - started) / 1000))} req/s, ${refused} refused`)
      } finally {
        server.kill()
        await server.exited
      }
    }
  }
} finally {
  redis.kill()
}
for (const [target, values] of figures) {
  const sorted = [...values].sort((a, b) => a - b)
  console.log(`${target}: median ${sorted[Math.floor(sorted.length / 2)]} µs CPU/request (${values.join(", ")})`)
}
