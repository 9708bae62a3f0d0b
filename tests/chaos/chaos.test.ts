/**
 * The chaos run's short version (issue 16): `tests/chaos/run.ts` for 30 s with
 * 2 gateways, 3 tasks (one per publisher kind) and 40 clients, a fault every
 * ~5 s. It exits 0 only when every acknowledged event reached every client
 * exactly once and in order, and the log holds them all.
 */
import { expect, it } from "bun:test"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { bunBin } from "../support/gateway.ts"

it("delivers every acknowledged event once, in order, through 30 s of injected faults", async () => {
  const child = spawn(bunBin, [join(import.meta.dir, "run.ts"), "--duration=30", "--gateways=2", "--tasks=3", "--clients=40", "--fault-every=5"], {
    cwd: join(import.meta.dir, "..", ".."),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout.on("data", (chunk) => (output += chunk))
  child.stderr.on("data", (chunk) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  const report = output.split("\n").filter((line) => !line.startsWith('{"time"') && !line.startsWith("taskstream is running")).join("\n")
  expect({ code, report }).toMatchObject({ code: 0 })
  expect(report).toMatch(/lost \(client \/ log\)\s+0 \/ 0/)
  expect(report).toMatch(/fault: /)
}, 120_000)
