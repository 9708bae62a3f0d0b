/**
 * A real Sentinel-managed Redis for a test file (SPEC §11): one master, one
 * replica and three `redis-sentinel` processes on free ports, monitoring the
 * group `mymaster` with a 1 s down-after. Failover can be forced with
 * `SENTINEL FAILOVER` or by SIGKILL of the master; a killed node comes back as
 * a replica of whoever is master then. Give the hook that starts it SENTINEL_START_MS.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { eventually, freePort } from "./ports.ts"

export const SENTINEL_START_MS = 30_000
export const MASTER_NAME = "mymaster"

export interface RedisSentinelServer {
  /** `redis+sentinel://127.0.0.1:s1,…/mymaster` */
  readonly url: string
  readonly sentinelPorts: ReadonlyArray<number>
  readonly dataPorts: ReadonlyArray<number>
  /** The master's port, as the sentinels report it. */
  master(): Promise<number>
  /**
   * Until every sentinel names the same master and counts a replica of it as healthy (not down, link ok):
   * a `SENTINEL FAILOVER` started before the sentinels see a good replica is aborted and not retried
   * (an automatic failover of a master that is down is, after 2 × the failover timeout), which a test
   * right after an earlier failover can hit.
   */
  settled(): Promise<number>
  /**
   * `SENTINEL FAILOVER`; resolves with the new master's port once it says it is master (it takes writes
   * then, unless `minReplicasToWrite` holds them until the old master has rejoined as its replica).
   */
  failover(): Promise<number>
  /** SIGKILL the master; resolves with the promoted replica's port once it accepts writes. */
  killMaster(): Promise<number>
  /** Start a killed node again (it rejoins as a replica). */
  restart(port: number): Promise<void>
  /** Stop the replica (SIGTERM) and start it again; resolves once it is back in sync. */
  restartReplica(): Promise<number>
  /** SIGSTOP / SIGCONT the node on `port`: a replica that stops acknowledging, without a disconnect. */
  freeze(port: number): void
  thaw(port: number): void
  /** A direct connection to the node on `port` (closed by stop). */
  node(port: number): Redis
  stop(): Promise<void>
}

const ask = async (port: number, ...command: Array<string>): Promise<unknown> => {
  const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on("error", () => {})
  try {
    await probe.connect()
    return await probe.call(command[0], ...command.slice(1))
  } catch {
    return undefined
  } finally {
    probe.disconnect()
  }
}

/** Until the master on `port` has a replica online (synced, streaming). */
const inSync = (port: number) =>
  eventually(async () => /slave\d+:.*state=online/.test(String(await ask(port, "INFO", "replication"))), 15_000, "a replica in sync")

export interface SentinelOptions {
  /**
   * `min-replicas-to-write` on the data nodes (with `min-replicas-max-lag 2`): a master that has lost
   * its replica refuses writes, so an old master stops taking them the moment its replica is
   * promoted (docs/deploy.md, "What an acknowledged event survives"). 0 (the default): Redis's default.
   */
  readonly minReplicasToWrite?: number
}

export const startRedisSentinel = async (options: SentinelOptions = {}): Promise<RedisSentinelServer> => {
  const dir = mkdtempSync(join(tmpdir(), "taskstream-sentinel-"))
  const dataPorts = [await freePort(), await freePort()]
  const sentinelPorts = [await freePort(), await freePort(), await freePort()]
  const processes = new Map<number, ChildProcess>()
  const clients = new Map<number, Redis>()

  const startData = async (port: number, replicaOf?: number) => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--dbfilename", `dump-${port}.rdb`,
      // Redis 7 waits 5 s before a diskless full sync by default: a replica that joins syncs at once here.
      "--repl-diskless-sync-delay", "0"]
    if (options.minReplicasToWrite) args.push("--min-replicas-to-write", String(options.minReplicasToWrite), "--min-replicas-max-lag", "2")
    if (replicaOf !== undefined) args.push("--replicaof", "127.0.0.1", String(replicaOf))
    processes.set(port, spawn("redis-server", args, { stdio: "ignore" }))
    await eventually(async () => (await ask(port, "PING")) === "PONG", 10_000, `redis-server on ${port}`)
  }
  const startSentinel = async (port: number, masterPort: number) => {
    const file = join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      file,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 4000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`
      ].join("\n") + "\n"
    )
    processes.set(port, spawn("redis-sentinel", [file], { stdio: "ignore" }))
    await eventually(async () => (await ask(port, "PING")) === "PONG", 10_000, `redis-sentinel on ${port}`)
  }

  const [first, second] = dataPorts
  await startData(first)
  await startData(second, first)
  await inSync(first)
  for (const port of sentinelPorts) await startSentinel(port, first)
  // Each sentinel must know the replica and the other sentinels before a failover can be agreed.
  await eventually(async () => {
    for (const port of sentinelPorts) {
      const replicas = (await ask(port, "SENTINEL", "REPLICAS", MASTER_NAME)) as Array<unknown> | undefined
      const master = (await ask(port, "SENTINEL", "MASTER", MASTER_NAME)) as Array<string> | undefined
      const others = master === undefined ? 0 : Number(master[master.indexOf("num-other-sentinels") + 1])
      if (replicas === undefined || replicas.length < 1 || others < 2) return false
    }
    return true
  }, 20_000, "the sentinels to discover the replica and each other")

  const master = async (): Promise<number> => {
    for (const port of sentinelPorts) {
      const address = (await ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)) as Array<string> | undefined
      if (address !== undefined) return Number(address[1])
    }
    throw new Error("no sentinel answers")
  }
  /** Waits until every sentinel names a master other than `old` and that master accepts writes. */
  const promoted = async (old: number): Promise<number> =>
    eventually(async () => {
      const named = await Promise.all(
        sentinelPorts.map(async (port) => {
          const address = (await ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)) as Array<string> | undefined
          return address === undefined ? undefined : Number(address[1])
        })
      )
      const next = named[0]
      if (next === undefined || next === old || named.some((port) => port !== next)) return undefined
      const role = (await ask(next, "ROLE")) as Array<unknown> | undefined
      return role?.[0] === "master" ? next : undefined
    }, 30_000, `a master other than ${old}`)

  const settled = (): Promise<number> =>
    eventually(async () => {
      const current = await master().catch(() => undefined)
      if (current === undefined) return undefined
      for (const port of sentinelPorts) {
        const address = (await ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)) as Array<string> | undefined
        if (address === undefined || Number(address[1]) !== current) return undefined
        const replicas = ((await ask(port, "SENTINEL", "REPLICAS", MASTER_NAME)) ?? []) as Array<Array<string>>
        const healthy = replicas.some((fields) => {
          const field = (name: string) => fields[fields.indexOf(name) + 1]
          return field("flags") === "slave" && field("master-link-status") === "ok"
        })
        if (!healthy) return undefined
      }
      return current
    }, 30_000, "every sentinel to agree on the master and see a healthy replica of it")

  const kill = async (port: number) => {
    const child = processes.get(port)
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGKILL")
    await exited
  }

  return {
    url: `redis+sentinel://${sentinelPorts.map((port) => `127.0.0.1:${port}`).join(",")}/${MASTER_NAME}`,
    sentinelPorts,
    dataPorts,
    master,
    settled,
    failover: async () => {
      const old = await master()
      await eventually(async () => (await ask(sentinelPorts[0], "SENTINEL", "FAILOVER", MASTER_NAME)) === "OK", 10_000, "SENTINEL FAILOVER accepted")
      return promoted(old)
    },
    killMaster: async () => {
      const old = await master()
      await kill(old)
      return promoted(old)
    },
    restart: async (port) => {
      const current = await master()
      await startData(port, current)
      await inSync(current)
    },
    restartReplica: async () => {
      const current = await master()
      const replica = dataPorts.find((port) => port !== current)!
      const child = processes.get(replica)
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve))
        child.kill("SIGTERM")
        await exited
      }
      await startData(replica, current)
      await inSync(current)
      return replica
    },
    freeze: (port) => void processes.get(port)?.kill("SIGSTOP"),
    thaw: (port) => void processes.get(port)?.kill("SIGCONT"),
    node: (port) => {
      let client = clients.get(port)
      if (client === undefined) {
        client = new Redis(port, "127.0.0.1", { retryStrategy: () => 100 })
        client.on("error", () => {})
        clients.set(port, client)
      }
      return client
    },
    stop: async () => {
      for (const client of clients.values()) client.disconnect()
      for (const [port, child] of processes) {
        child.kill("SIGCONT")
        await kill(port)
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
