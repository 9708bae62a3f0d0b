/**
 * The dependency direction of `src/` (STYLE.md): the data path reads
 * events → log → stream → transport → http → runtime, and no import runs back
 * up. Every relative import of every source file is checked, type-only and
 * re-exports included, against this table of areas, lowest first. An area
 * may import itself and the areas it lists, nothing else:
 *
 * - shared leaves: `limits.ts`, `redisUrl.ts`, `observability/` — settings
 *   tables, URL parsing, metrics and logs; they import only each other.
 * - `events/` — the envelope, the registry, payloads, filters: pure.
 * - `config.ts` — every setting, validated once; it parses EVENT_TYPES_FILE
 *   with `events/`, and never imports `log/`.
 * - `log/` — the log services and their Memory and Redis layers.
 * - `stream/` — TaskStream, the pipeline over the log.
 * - `publisher/` — the SDK workflows publish with: over the log's append
 *   script, or in-process on the log services.
 * - `transport/` — bytes on the wire (SSE, WebSocket, codecs) for a stream.
 * - `ingest/` — the broker bridge and the CloudEvents mapping, onto the log.
 * - `demo/` — the demo agents a gateway runs in-process, on a publisher.
 * - `http/` — the hono app: routes, auth, limits.
 * - runtime: `gateway.ts` composes the layers; `main.bun.ts`, `main.deno.ts`
 *   are the runtime entries.
 * - apps on top, which nothing imports: `client/` (the browser client: only
 *   `events/`, so its bundle holds plain data, no schema library),
 *   `dashboard/` and `cli/` (on the client).
 */
import { describe, expect, it } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"

const root = join(import.meta.dir, "..")
const src = join(root, "src")

const LEAVES = ["limits", "redisUrl", "observability"]
const BELOW_LOG = [...LEAVES, "events", "config"]

/** Area → the areas it may import (besides itself). */
const ALLOWED: Record<string, ReadonlyArray<string>> = {
  limits: LEAVES,
  redisUrl: LEAVES,
  observability: LEAVES,
  events: LEAVES,
  config: [...LEAVES, "events"],
  log: BELOW_LOG,
  stream: [...BELOW_LOG, "log"],
  publisher: [...BELOW_LOG, "log", "stream"],
  transport: [...BELOW_LOG, "log", "stream", "publisher"],
  ingest: [...BELOW_LOG, "log", "stream", "publisher", "transport"],
  demo: [...BELOW_LOG, "log", "stream", "publisher", "transport", "ingest"],
  http: [...BELOW_LOG, "log", "stream", "publisher", "transport", "ingest", "demo"],
  gateway: [...BELOW_LOG, "log", "stream", "publisher", "transport", "ingest", "demo", "http"],
  main: [...BELOW_LOG, "log", "stream", "publisher", "transport", "ingest", "demo", "http", "gateway"],
  client: ["events"],
  dashboard: ["events", "client"],
  cli: ["events", "client"]
}

/** The area of a path under src/: its folder, or its file's name for a top-level file (main.* are one). */
const areaOf = (path: string): string => {
  const [first, ...rest] = relative(src, path).split("/")
  if (rest.length > 0) return first
  const name = first.replace(/\.(ts|tsx)$/, "")
  return name.startsWith("main.") ? "main" : name
}

const sourceFiles = (): Array<string> =>
  readdirSync(src, { recursive: true, encoding: "utf8" }).filter((path) => /\.tsx?$/.test(path)).map((path) => join(src, path))

/** Relative module specifiers: static and type-only imports, re-exports and dynamic imports. */
const relativeImports = (code: string): Array<string> =>
  [...code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((match) => match[1])

interface Edge {
  readonly from: string
  readonly to: string
  readonly file: string
  readonly imported: string
}

const edges = (): Array<Edge> =>
  sourceFiles().flatMap((file) =>
    relativeImports(readFileSync(file, "utf8")).flatMap((specifier) => {
      const target = normalize(join(dirname(file), specifier))
      if (!target.startsWith(src)) return []
      const from = areaOf(file)
      const to = areaOf(target)
      return from === to ? [] : [{ from, to, file: relative(root, file), imported: relative(root, target) }]
    })
  )

describe("Architecture", () => {
  const all = edges()

  it("knows the area of every source file", () => {
    const unknown = [...new Set(sourceFiles().map(areaOf))].filter((area) => !Object.hasOwn(ALLOWED, area))
    expect(unknown).toEqual([])
    expect(all.length).toBeGreaterThan(50)
  })

  it("has no import running back up: events → log → stream → transport → http → runtime", () => {
    const violations = all
      .filter((edge) => !ALLOWED[edge.from].includes(edge.to))
      .map((edge) => `${edge.file} (${edge.from}) imports ${edge.imported} (${edge.to})`)
    expect(violations).toEqual([])
  })

  it("keeps config free of the log", () => {
    expect(all.filter((edge) => edge.from === "config" && edge.to === "log")).toEqual([])
    expect(ALLOWED.config).not.toContain("log")
  })

  it("catches an import that runs back up", () => {
    // The check itself can fail: an import of the log from events is not allowed.
    expect(ALLOWED.events.includes(areaOf(join(src, "log", "EventLog.ts")))).toBe(false)
    expect(relativeImports('import type { X } from "../log/EventLog.ts"\nexport { Y } from "./y.ts"')).toEqual(["../log/EventLog.ts", "./y.ts"])
  })
})
