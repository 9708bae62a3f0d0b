/**
 * A real redis-server for a test file, on a free port, stopped afterwards.
 * Each server is the test's own, so tests can kill, restart or flush it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { eventually, freePort } from "./ports.ts"

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** A client connection for assertions (closed by stop). */
  readonly client: Redis
  /** Stop the server process (SIGKILL when `crash`). */
  kill(crash?: boolean): Promise<void>
  /** Start it again on the same port and data directory. */
  start(): Promise<void>
  stop(): Promise<void>
}

export const startRedis = async (options: { appendonly?: boolean } = {}): Promise<RedisServer> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "taskstream-redis-"))
  let child: ChildProcess | undefined
  const launch = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", options.appendonly ? "yes" : "no", "--dir", dir],
      { stdio: "ignore" }
    )
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 })
    probe.on("error", () => {})
    await eventually(() => probe.ping().then(() => true, () => false), 10_000, `redis-server on ${port}`)
    probe.disconnect()
  }
  await launch()
  const client = new Redis(port, "127.0.0.1", { retryStrategy: () => 100 })
  client.on("error", () => {})
  const kill = async (crash = false) => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once("exit", resolve))
    running.kill(crash ? "SIGKILL" : "SIGTERM")
    await exited
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    kill,
    start: launch,
    stop: async () => {
      client.disconnect()
      await kill(true)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
