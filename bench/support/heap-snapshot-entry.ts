// Starts the gateway (src/main.bun.ts) in this process and writes a V8-format heap snapshot to
// $HEAP_SNAPSHOT_PATH on SIGUSR2, so the bench can see what live connections hold.
import { renameSync, writeFileSync } from "node:fs"

const path = process.env.HEAP_SNAPSHOT_PATH
if (!path) throw new Error("HEAP_SNAPSHOT_PATH is required")
process.on("SIGUSR2", () => {
  writeFileSync(`${path}.tmp`, Bun.generateHeapSnapshot("v8"))
  renameSync(`${path}.tmp`, path)
})
await import("../../src/main.bun.ts")
