// `bun bench/chart.ts [results.json] [out.svg]`: draws p99 latency and server CPU per scenario for
// ceiling, gateway, floor and Nchan from bench/results/latest.json into docs/performance.svg, and prints
// the same results as a Markdown table for docs/performance.md.
import { readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

interface Row {
  scenario: string
  target: "ceiling" | "gateway" | "floor" | "nchan"
  status: string
  note: string
  delivered: number
  expected: number
  gaps: number
  dups: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  serverCpuS: number | null
  peakRssMB: number | null
  loadgenCpuS: number | null
  deliveriesPerS: number | null
  publishedPerS: number | null
  rssPerConnectionKB: number | null
  rssSettledPerConnectionKB?: number | null
  historyAllS: number | null
  ingestP50Ms?: number | null
  ingestP99Ms?: number | null
  cpuPerEventUs?: number | null
  stormCaughtUpS?: number | null
  stormThrottledS?: number | null
  logReads?: number | null
}

const ROOT = resolve(import.meta.dir, "..")
const [input = join(ROOT, "bench/results/latest.json"), output = join(ROOT, "docs/performance.svg")] = process.argv.slice(2)
const { results, started, verdicts = [] } = JSON.parse(readFileSync(input, "utf8")) as {
  results: Row[]
  started: string
  verdicts?: { scenario: string; target: string; met: boolean | null }[]
}
const TARGETS = ["ceiling", "gateway", "floor", "nchan"] as const
const COLORS = { ceiling: "#4c78a8", gateway: "#f58518", floor: "#9d9d9d", nchan: "#54a24b" }
const scenarios = [...new Set(results.map((r) => r.scenario))]

const escape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;")
const label = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))

/** One panel: a group of bars per scenario, each group scaled to its own largest value. */
const panel = (title: string, unit: string, pick: (r: Row) => number | null, y: number): string => {
  const width = 900
  const height = 230
  const left = 40
  const groupWidth = (width - left - 20) / scenarios.length
  const barWidth = Math.min(40, (groupWidth - 30) / TARGETS.length)
  const plotTop = y + 40
  const plotHeight = height - 90
  const parts = [`<text x="${left}" y="${y + 22}" font-size="16" font-weight="bold">${escape(title)}</text>`]
  scenarios.forEach((scenario, g) => {
    const rows = TARGETS.map((t) => results.find((r) => r.scenario === scenario && r.target === t && r.status === "ok"))
    const values = rows.map((r) => (r ? pick(r) : null))
    const max = Math.max(0, ...values.filter((v): v is number => typeof v === "number" && Number.isFinite(v)))
    const x0 = left + g * groupWidth + (groupWidth - TARGETS.length * barWidth - 4 * (TARGETS.length - 1)) / 2
    values.forEach((v, i) => {
      const x = x0 + i * (barWidth + 4)
      if (typeof v !== "number" || !Number.isFinite(v) || max === 0) {
        parts.push(`<text x="${x + barWidth / 2}" y="${plotTop + plotHeight - 4}" font-size="10" text-anchor="middle" fill="#999">n/a</text>`)
        return
      }
      const h = Math.max(1, (v / max) * plotHeight)
      parts.push(`<rect x="${x}" y="${plotTop + plotHeight - h}" width="${barWidth}" height="${h}" fill="${COLORS[TARGETS[i]!]}"/>`)
      parts.push(`<text x="${x + barWidth / 2}" y="${plotTop + plotHeight - h - 4}" font-size="10" text-anchor="middle">${label(v)}</text>`)
    })
    parts.push(`<text x="${left + g * groupWidth + groupWidth / 2}" y="${plotTop + plotHeight + 18}" font-size="12" text-anchor="middle">${escape(scenario)}</text>`)
  })
  parts.push(`<line x1="${left}" y1="${plotTop + plotHeight}" x2="${width - 20}" y2="${plotTop + plotHeight}" stroke="#333"/>`)
  parts.push(`<text x="${width - 20}" y="${y + 22}" font-size="11" text-anchor="end" fill="#555">${escape(unit)}; bars scaled per scenario</text>`)
  return parts.join("\n")
}

const legend = TARGETS.map((t, i) =>
  `<rect x="${40 + i * 110}" y="12" width="12" height="12" fill="${COLORS[t]}"/><text x="${58 + i * 110}" y="22" font-size="12">${t}</text>`).join("\n")

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="520" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${legend}
<text x="880" y="22" font-size="11" text-anchor="end" fill="#555">bench run ${escape(started)}</text>
${panel("p99 latency (publish → received)", "ms, lower is better", (r) => r.p99Ms, 30)}
${panel("server CPU during the scenario", "CPU seconds, lower is better", (r) => r.serverCpuS, 270)}
</svg>
`
writeFileSync(output, svg)
console.error(`wrote ${output}`)

const num = (v: number | null, digits: number): string => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–")
const times = (v: number | null, base: number | null | undefined): string =>
  typeof v === "number" && typeof base === "number" && Number.isFinite(v) && base > 0 ? ` (${(v / base).toFixed(2)}×)` : ""
const figure = (r: Row): string =>
  r.scenario === "reconnect-storm"
    ? `caught up ${num(r.stormCaughtUpS ?? null, 2)} s, throttled ${num(r.stormThrottledS ?? null, 2)} s, ${num(r.logReads ?? null, 0)} log reads`
    : r.scenario.endsWith("-http")
    ? `${num((r.deliveriesPerS ?? NaN) / 1000, 0)}k deliveries/s; published ${num(r.publishedPerS, 0)} ev/s, ingest p50/p99 ${num(r.ingestP50Ms ?? null, 1)}/${num(r.ingestP99Ms ?? null, 1)} ms, ${num(r.cpuPerEventUs ?? null, 0)} µs CPU/event`
    : r.scenario === "idle" ? `${num(r.rssPerConnectionKB, 1)} KB RSS/conn (${num(r.rssSettledPerConnectionKB ?? null, 1)} at 12 s)`
    : r.scenario === "history" ? `all history in ${num(r.historyAllS, 2)} s`
    : r.scenario === "burst" ? `${num((r.deliveriesPerS ?? NaN) / 1e6, 2)}M deliveries/s (published ${num((r.publishedPerS ?? NaN) / 1000, 1)}k ev/s)`
    : `${num((r.deliveriesPerS ?? NaN) / 1000, 0)}k deliveries/s`
const lines = [
  "| scenario | system | delivered / expected | gaps | dups | p50 ms | p99 ms | max ms | server CPU s | peak RSS MB | load-gen CPU s | figure |",
  "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
]
for (const scenario of scenarios) {
  const ceiling = results.find((r) => r.scenario === scenario && r.target === "ceiling" && r.status === "ok")
  for (const r of results.filter((x) => x.scenario === scenario)) {
    if (r.status !== "ok") {
      lines.push(`| ${scenario} | ${r.target} | ${r.status}: ${escape(r.note)} | | | | | | | | | |`)
      continue
    }
    const base = r.target === "ceiling" ? undefined : ceiling
    lines.push(`| ${scenario} | ${r.target} | ${r.delivered} / ${r.expected} | ${r.gaps} | ${r.dups} | ${num(r.p50Ms, 2)} | ${num(r.p99Ms, 2)}${times(r.p99Ms, base?.p99Ms)} | ${num(r.maxMs, 0)} | ${num(r.serverCpuS, 2)}${times(r.serverCpuS, base?.serverCpuS)} | ${num(r.peakRssMB, 0)} | ${num(r.loadgenCpuS, 2)} | ${figure(r)} |`)
  }
}
lines.push("", "| scenario | target | gateway |", "|---|---|---|")
for (const v of verdicts) lines.push(`| ${v.scenario} | ${v.target} | ${v.met === true ? "met" : v.met === false ? "**missed**" : "n/a"} |`)
console.log(lines.join("\n"))
