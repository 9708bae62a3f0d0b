// Child processes of a bench run: a free port, spawning with a raised fd limit, waiting for a
// readiness line, and stopping — every wait bounded in time.
import type { Subprocess } from "bun"

export const BUN = process.execPath

export const freePort = (): number => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  return port
}

/** Highest open-files limit this shell may set, so spawned processes can hold 10k+ sockets. */
export const hardFileLimit = (): number => {
  const out = Bun.spawnSync(["sh", "-c", "ulimit -Hn"]).stdout.toString().trim()
  const n = Number(out)
  return Number.isFinite(n) && n > 0 ? n : 1024
}

export interface Child {
  readonly proc: Subprocess<"pipe", "pipe", "pipe">
  /** Pid of the program itself (the `sh` wrapper execs into it). */
  readonly pid: number
  readonly lines: AsyncIterator<string>
  stderrTail: string
}

/** Spawns `argv` under `sh -c 'ulimit -n <hard>; exec …'`, on the CPUs `cpus` (taskset list) if
 *  given; stdout is read as lines. */
export const spawnChild = (argv: string[], env: Record<string, string>, cwd: string, cpus?: string): Child => {
  const limit = hardFileLimit()
  const quoted = (cpus ? ["taskset", "-c", cpus, ...argv] : argv).map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ")
  const proc = Bun.spawn(["sh", "-c", `ulimit -n ${limit} 2>/dev/null; exec ${quoted}`], {
    cwd,
    env: { ...process.env, ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  })
  const child: Child = { proc, pid: proc.pid, lines: readLines(proc.stdout), stderrTail: "" }
  void (async () => {
    const decoder = new TextDecoder()
    for await (const chunk of proc.stderr) {
      child.stderrTail = (child.stderrTail + decoder.decode(chunk)).slice(-4000)
    }
  })()
  return child
}

async function* readLinesGen(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffered = ""
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
    }
  }
  if (buffered) yield buffered
}

const readLines = (stream: ReadableStream<Uint8Array>): AsyncIterator<string> => readLinesGen(stream)

export const timeout = <A>(ms: number, what: string, promise: Promise<A>): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ])
}

/** Reads stdout lines until one satisfies `match`; other lines are passed to `onOther`. */
export const waitForLine = async (
  child: Child,
  match: (line: string) => boolean,
  ms: number,
  what: string,
  onOther: (line: string) => void = () => {},
): Promise<string> =>
  timeout(ms, what, (async () => {
    for (let i = 0; i < 100_000; i++) {
      const next = await child.lines.next()
      if (next.done) throw new Error(`${what}: process exited (${child.proc.exitCode}); stderr: ${child.stderrTail}`)
      if (match(next.value)) return next.value
      onOther(next.value)
    }
    throw new Error(`${what}: no matching line in 100000 lines`)
  })())

/** Keeps reading stdout after start-up so a chatty child never blocks on a full pipe. */
export const drainLines = (child: Child, onLine: (line: string) => void = () => {}): void => {
  void (async () => {
    for (;;) {
      const next = await child.lines.next()
      if (next.done) return
      onLine(next.value)
    }
  })()
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export const stopChild = async (child: Child, graceMs = 3000): Promise<void> => {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return
  child.proc.kill("SIGTERM")
  const exited = await Promise.race([child.proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)])
  if (!exited) {
    child.proc.kill("SIGKILL")
    await Promise.race([child.proc.exited, Bun.sleep(1000)])
  }
}
