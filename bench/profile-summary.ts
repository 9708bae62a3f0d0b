// `bun bench/profile-summary.ts <file> [top=25] [--by=area]`
//   .cpuprofile   — self time per function, highest first; --by=area: self time per area of the
//                   gateway (routing, auth, JSON, Schema, Effect, ioredis, …; AREAS below), a native
//                   frame counted in the area of the nearest caller that has a source file.
//   .heapsnapshot — retained-by-self bytes per object kind (type:name), highest first.
import { readFileSync } from "node:fs"
import { relative } from "node:path"

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}
interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }
  nodes: number[]
  strings: string[]
}

/** First match wins; tested against `<url> <functionName>` of the frame. */
const AREAS: [string, RegExp][] = [
  ["metrics", /effect\/dist\/Metric|src\/observability\/metrics/],
  ["logging", /src\/observability\/log|effect\/dist\/(internal\/)?[Ll]ogger/],
  ["auth + publish rate", /src\/http\/(guard|auth|jwks|publishRate)\.ts/],
  ["Schema decode", /effect\/dist\/Schema/],
  ["task index", /task_index|TaskStates/],
  ["ioredis (commands, replies, socket)", /node_modules\/ioredis|node:net|src\/log\/appendScript|internal:streams/],
  ["routing + request (hono)", /node_modules\/hono/],
  ["ingest handler", /src\/(http\/publishing|http\/routes|ingest)[/.]/],
  ["events (envelope, registry, payloads)", /src\/events\//],
  ["fan-out + SSE", /src\/(log\/LiveChannels|log\/RedisLiveFeed|stream|transport)\/|onReadStreamIntoSinkChunk/],
  ["Effect runtime", /effect\/dist\//],
  ["gateway (other src/)", /\/src\//],
]
const JSON_NATIVE = new Set(["parse", "stringify"])
/**
 * JavaScriptCore samples the JS thread only while it runs: the first sample after the thread slept
 * (in the event loop, between requests) carries the whole sleep as its delta. Longer than this, a
 * delta is counted as idle, not as time in the function sampled (which once showed 8 s of a
 * one-line ioredis loop in an idle gateway's profile).
 */
const IDLE_GAP_US = 50_000
const IDLE = "(idle: the JS thread not sampled for > 50 ms)"

const byArea = (profile: CpuProfile): void => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const areaOf = (node: ProfileNode): string => {
    if (!node.callFrame.url && JSON_NATIVE.has(node.callFrame.functionName)) return "JSON parse/stringify"
    for (let id: number | undefined = node.id, guard = 0; id !== undefined && guard < 500; id = parent.get(id), guard++) {
      const { url, functionName } = byId.get(id)!.callFrame
      if (!url && id !== node.id) continue
      const text = `${url} ${functionName}`
      for (const [area, pattern] of AREAS) if (pattern.test(text)) return area
      if (url) return "other (libraries)"
    }
    return "native, no JS caller (event loop, idle)"
  }
  const us = new Map<string, number>()
  let totalUs = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)
    if (!node) continue
    const dt = profile.timeDeltas[i] ?? 0
    const area = dt > IDLE_GAP_US ? IDLE : areaOf(node)
    us.set(area, (us.get(area) ?? 0) + dt)
    totalUs += dt
  }
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled (wall time of the JS thread, idle included)`)
  console.log("self ms   self %  area")
  for (const [area, t] of [...us].sort((a, b) => b[1] - a[1])) {
    console.log(`${(t / 1000).toFixed(0).padStart(7)}  ${((100 * t) / totalUs).toFixed(1).padStart(6)}  ${area}`)
  }
}

const [file, topArg] = process.argv.slice(2).filter((a) => !a.startsWith("--"))
if (!file) throw new Error("usage: bun bench/profile-summary.ts <file.cpuprofile|file.heapsnapshot> [top]")
const top = Number(topArg ?? 25)

const cpu = (profile: CpuProfile): void => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<string, number>()
  let totalUs = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)
    const dt = profile.timeDeltas[i] ?? 0
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ""))}:${lineNumber + 1}` : ""
    const key = dt > IDLE_GAP_US ? IDLE : `${functionName || "(anonymous)"} ${where}`.trim()
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt)
    totalUs += dt
  }
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled`)
  console.log("self ms   self %  function")
  for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / totalUs).toFixed(1).padStart(6)}  ${key}`)
  }
}

const heap = (snapshot: HeapSnapshot): void => {
  const width = snapshot.snapshot.meta.node_fields.length
  const types = snapshot.snapshot.meta.node_types[0]
  const byKind = new Map<string, { bytes: number; count: number }>()
  let total = 0
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const key = `${types[snapshot.nodes[i]!]}:${(snapshot.strings[snapshot.nodes[i + 1]!] ?? "").slice(0, 70)}`
    const entry = byKind.get(key) ?? { bytes: 0, count: 0 }
    entry.bytes += snapshot.nodes[i + 3]!
    entry.count++
    byKind.set(key, entry)
    total += snapshot.nodes[i + 3]!
  }
  console.log(`${file}: ${(total / 1024 / 1024).toFixed(1)} MB in ${snapshot.nodes.length / width} objects`)
  console.log("   self KB    count  kind")
  for (const [key, { bytes, count }] of [...byKind].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    console.log(`${(bytes / 1024).toFixed(0).padStart(10)}  ${String(count).padStart(7)}  ${key}`)
  }
}

const parsed = JSON.parse(readFileSync(file, "utf8")) as CpuProfile | HeapSnapshot
if ("snapshot" in parsed) heap(parsed)
else if (process.argv.includes("--by=area")) byArea(parsed)
else cpu(parsed)
