/**
 * Structured logs: one JSON line per event worth logging, with the request id
 * and subject where there is one. Tokens are never logged.
 */
export type Level = "debug" | "info" | "warn" | "error"

const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }
let threshold: Level = "info"

export const setLogLevel = (level: Level): void => {
  threshold = level
}

export const logLine = (level: Level, message: string, fields: Record<string, unknown> = {}): void => {
  if (rank[level] < rank[threshold]) return
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })
  if (level === "error" || level === "warn") console.error(line)
  else console.log(line)
}
