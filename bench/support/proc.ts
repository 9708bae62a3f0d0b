// CPU and memory of a process, read from /proc (Linux).
import { readFileSync } from "node:fs"

const TICKS_PER_SECOND = 100

/** User + system CPU seconds the process has used so far (0 once it is gone). */
export const cpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return 0
  }
}

const statusKb = (pid: number, key: string): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1")
    const at = status.indexOf(key + ":")
    return at < 0 ? 0 : parseInt(status.slice(at + key.length + 1), 10)
  } catch {
    return 0
  }
}

/** Resident set size now, in bytes. */
export const rssBytes = (pid: number): number => statusKb(pid, "VmRSS") * 1024
/** Peak resident set size, in bytes. */
export const peakRssBytes = (pid: number): number => statusKb(pid, "VmHWM") * 1024

/** CPU seconds of the whole machine so far (all cores, /proc/stat): busy (all but idle and iowait),
 *  and the part spent in interrupts (irq + softirq: on loopback, much of the TCP work). */
export const machineCpu = (): { busy: number; interrupts: number } => {
  const fields = readFileSync("/proc/stat", "latin1").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: (total - fields[3]! - fields[4]!) / TICKS_PER_SECOND, interrupts: (fields[5]! + fields[6]!) / TICKS_PER_SECOND }
}
