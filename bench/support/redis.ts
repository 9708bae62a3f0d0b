// A throwaway redis-server for one bench run: free port, no persistence, high client limit.
import Redis from "ioredis"
import { freePort, spawnChild, stopChild, waitForLine, type Child } from "./processes.ts"

export interface BenchRedis {
  readonly url: string
  readonly port: number
  readonly child: Child
  stop(): Promise<void>
}

export const startRedis = async (cwd: string): Promise<BenchRedis> => {
  const port = freePort()
  const child = spawnChild(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--maxclients", "15000", "--loglevel", "notice", "--client-output-buffer-limit", "pubsub", "0", "0", "0"],
    {},
    cwd,
  )
  await waitForLine(child, (l) => l.includes("Ready to accept connections"), 10_000, "redis-server start")
  return { url: `redis://127.0.0.1:${port}`, port, child, stop: () => stopChild(child) }
}

export const connect = (url: string): Redis => new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 })
