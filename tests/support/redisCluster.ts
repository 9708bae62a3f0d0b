/**
 * A real Redis Cluster for a test file: `masters` (default 3) redis-server
 * processes with `--cluster-enabled yes` on free ports, optionally `replicas`
 * per master, joined by `redis-cli --cluster create`; resolves once every node
 * reports `cluster_state:ok`. Each node can be killed to test failover.
 * Starting one takes a few seconds: give the hook that calls it CLUSTER_START_MS.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cluster, Redis } from "ioredis"
import { eventually, freePort } from "./ports.ts"

export const CLUSTER_START_MS = 30_000

export interface RedisClusterNode {
  readonly port: number
  readonly process: ChildProcess
}

export interface RedisClusterServer {
  /** `127.0.0.1:p1,127.0.0.1:p2,…` — the form of REDIS_CLUSTER_NODES. */
  readonly nodes: string
  /** `redis+cluster://127.0.0.1:p1,…` — the cluster form of REDIS_URL. */
  readonly url: string
  readonly ports: ReadonlyArray<number>
  /** A cluster client for assertions (closed by stop). */
  readonly client: Cluster
  /** The port of the master serving `key`'s slot. */
  masterOf(key: string): Promise<number>
  /** SIGKILL the node on `port`. */
  kill(port: number): Promise<void>
  stop(): Promise<void>
}

const nodeCommand = async (port: number, ...command: Array<string>): Promise<string> => {
  const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on("error", () => {})
  try {
    await probe.connect()
    return String(await probe.call(command[0], ...command.slice(1)))
  } catch {
    return ""
  } finally {
    probe.disconnect()
  }
}

export const startRedisCluster = async (
  options: { masters?: number; replicas?: number } = {}
): Promise<RedisClusterServer> => {
  const masters = options.masters ?? 3
  const replicas = options.replicas ?? 0
  const dir = mkdtempSync(join(tmpdir(), "taskstream-cluster-"))
  const nodes = new Map<number, RedisClusterNode>()
  const ports: Array<number> = []
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort())
  for (const port of ports) {
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir)
    const child = spawn(
      "redis-server",
      [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", nodeDir,
        "--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"),
        // Fail over quickly in tests: a master is declared down after 1 s of silence,
        // and replicas get their first copy at once (a never-synced replica refuses to fail over).
        "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0"
      ],
      { stdio: "ignore" }
    )
    nodes.set(port, { port, process: child })
  }
  for (const port of ports) {
    await eventually(async () => (await nodeCommand(port, "PING")) !== "", 10_000, `redis-server on ${port}`)
  }
  const create = spawn(
    "redis-cli",
    ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", String(replicas), "--cluster-yes"],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let createOutput = ""
  create.stdout!.on("data", (chunk: Buffer) => void (createOutput += chunk.toString()))
  create.stderr!.on("data", (chunk: Buffer) => void (createOutput += chunk.toString()))
  const status = await new Promise<number | null>((resolve) => create.once("exit", resolve))
  if (status !== 0) throw new Error(`redis-cli --cluster create failed:\n${createOutput}`)
  for (const port of ports) {
    await eventually(
      async () => {
        const info = await nodeCommand(port, "CLUSTER", "INFO")
        const replication = await nodeCommand(port, "INFO", "replication")
        return info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${ports.length}`) &&
          (replication.includes("role:master") || replication.includes("master_link_status:up"))
      },
      20_000,
      `cluster_state:ok (and replicas in sync) on ${port}`
    )
  }
  const list = ports.map((port) => `127.0.0.1:${port}`).join(",")
  const client = new Cluster([{ host: "127.0.0.1", port: ports[0] }], { clusterRetryStrategy: () => 100 })
  client.on("error", () => {})
  const kill = async (port: number) => {
    const node = nodes.get(port)
    if (node === undefined || node.process.exitCode !== null || node.process.signalCode !== null) return
    const exited = new Promise((resolve) => node.process.once("exit", resolve))
    node.process.kill("SIGKILL")
    await exited
  }
  return {
    nodes: list,
    url: `redis+cluster://${list}`,
    ports,
    client,
    masterOf: async (key) => {
      const slot = Number(await client.call("CLUSTER", "KEYSLOT", key))
      const slots = (await client.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>
      const range = slots.find(([from, to]) => slot >= from && slot <= to)
      if (range === undefined) throw new Error(`no node serves slot ${slot}`)
      return Number(range[2][1])
    },
    kill,
    stop: async () => {
      client.disconnect()
      for (const port of ports) await kill(port)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
