// `bun bench/profile-summary.ts <file.cpuprofile> [top=25]`: self time per function, highest first.
import { readFileSync } from "node:fs"
import { relative } from "node:path"

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [file, topArg] = process.argv.slice(2)
if (!file) throw new Error("usage: bun bench/profile-summary.ts <file.cpuprofile> [top]")
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<string, number>()
let totalUs = 0
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]!)
  const dt = profile.timeDeltas[i] ?? 0
  if (!node) continue
  const { functionName, url, lineNumber } = node.callFrame
  const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ""))}:${lineNumber + 1}` : ""
  const key = `${functionName || "(anonymous)"} ${where}`.trim()
  selfUs.set(key, (selfUs.get(key) ?? 0) + dt)
  totalUs += dt
}
const idle = [...selfUs].filter(([k]) => /^\((idle|program|garbage collector)\)/.test(k)).reduce((n, [, v]) => n + v, 0)
console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${((totalUs - idle) / 1e6).toFixed(2)} s busy`)
console.log("self ms   self %  function")
for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25))) {
  console.log(`${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / totalUs).toFixed(1).padStart(6)}  ${key}`)
}
