/**
 * A real gateway process for a test, under Bun (`bun src/main.bun.ts`) or
 * Deno (`deno task start`), on a free port, with the embedded memory log or a
 * given Redis. Resolves once it listens.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

export interface Gateway {
  readonly url: string
  readonly process: ChildProcess
  /** Everything the process printed so far. */
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export type LogKind = "memory" | "redis" | "cluster"

/** The runtimes the gateway runs on; Bun is the main one. */
export type RuntimeName = "bun" | "deno"
export const RUNTIMES: ReadonlyArray<RuntimeName> = ["bun", "deno"]

const root = join(import.meta.dir, "..", "..")
export const bunBin = join(root, "node_modules", ".bin", "bun")

/** Deno's command line is the one `deno task start` runs, so its permission flags live in deno.json only. */
const denoStart = (): ReadonlyArray<string> => {
  const { tasks } = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as { tasks: { start: string } }
  const [bin, ...args] = tasks.start.split(/\s+/)
  return [join(root, bin), ...args]
}

const commands: Record<RuntimeName, () => ReadonlyArray<string>> = {
  bun: () => [bunBin, "src/main.bun.ts"],
  deno: denoStart
}

export const startGateway = async (env: Record<string, string | undefined> = {}, runtime: RuntimeName = "bun"): Promise<Gateway> => {
  const [bin, ...args] = commands[runtime]()
  const child = spawn(bin, args, {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running behind the failure.
      child.kill("SIGKILL")
      reject(new Error(`gateway did not start:\n${output}`))
    }, 15_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /"message":"listening","url":"([^"]+)"/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`gateway exited with ${code}:\n${output}`))
    })
  })
  return {
    url,
    process: child,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null) return child.exitCode
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      child.kill(signal)
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}
