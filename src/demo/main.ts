#!/usr/bin/env bun
/**
 * `npm run demo -- [--agent demo-agent] [--task <id>] [--speed 1] [--url <gateway>]`:
 * the demo agent as its own process, publishing into Redis (REDIS_URL,
 * REDIS_PREFIX) and obeying the task's control stream — what a real workflow
 * next to a gateway looks like. Its hints name the gateway at `--url` (else
 * TASKSTREAM_URL, else localhost on PORT or 8080), checked with /healthz.
 * Exits 0 when the run completed or was cancelled.
 */
import process from "node:process"
import { parseArgs } from "node:util"
import { redisPublisher } from "../publisher/index.ts"
import { runDemoAgent } from "./agent.ts"
import { newDemoTask } from "./runs.ts"

const { values } = parseArgs({
  options: {
    agent: { type: "string" },
    task: { type: "string" },
    speed: { type: "string", default: process.env.DEMO_SPEED ?? "1" },
    url: { type: "string", default: process.env.TASKSTREAM_URL ?? `http://localhost:${process.env.PORT ?? "8080"}` }
  }
})
const redisUrl = process.env.REDIS_URL
if (redisUrl === undefined || redisUrl === "") {
  process.stderr.write("npm run demo publishes into Redis: set REDIS_URL (the gateway must use the same Redis).\n" +
    "Without Redis, start the gateway (npm start) and press “Start demo task” on its dashboard.\n")
  process.exit(2)
}
const speed = Number(values.speed)
if (!(speed > 0)) {
  process.stderr.write(`--speed must be a positive number, got '${values.speed}'\n`)
  process.exit(2)
}
const fresh = newDemoTask()
const task = { agentId: values.agent ?? fresh.agentId, taskId: values.task ?? fresh.taskId }

const publisher = redisPublisher({ redis: redisUrl, prefix: process.env.REDIS_PREFIX ?? "ts" })
const stop = new AbortController()
process.once("SIGINT", () => stop.abort())
process.once("SIGTERM", () => stop.abort())

const gateway = values.url.replace(/\/+$/, "")
const answers = await fetch(`${gateway}/healthz`, { signal: AbortSignal.timeout(1000) }).then((response) => response.ok, () => false)
console.log(`demo agent running as ${task.agentId}/${task.taskId}`)
if (!answers) console.log(`  (no gateway answers at ${gateway}; pass --url with the one on this Redis)`)
console.log(`  watch it:   npm run tail -- ${task.agentId} ${task.taskId} --url ${gateway}`)
console.log(`  pause it:   curl -X POST ${gateway}/api/v1/agents/${task.agentId}/tasks/${task.taskId}/pause`)
const outcome = await runDemoAgent({ publisher, task, speed, signal: stop.signal }).finally(() => publisher.close())
console.log(`demo agent ${outcome}`)
process.exit(outcome === "stopped" ? 130 : 0)
