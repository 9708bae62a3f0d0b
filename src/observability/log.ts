/**
 * Structured logs: one JSON line per event worth logging, with the request id
 * and subject where there is one. Tokens are never logged.
 *
 * Each gateway has its own logger (`gatewayLogger`, from LOG_LEVEL): Effect's
 * logger for effects (`Effect.logInfo(…)` with `Effect.annotateLogs(fields)`),
 * and `GatewayLog`, the same lines at the same level, for plain code (socket
 * callbacks, Redis client events). Two gateways in one process log each at
 * their own level.
 */
import { Context, Effect, Layer, Logger, type LogLevel, References } from "effect"

export type Level = "debug" | "info" | "warn" | "error"

/** Write one line at `level`, with `fields` beside the message. */
export type LogLine = (level: Level, message: string, fields?: Record<string, unknown>) => void

const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** The one output of every logger here: warnings and errors to stderr, the rest to stdout. */
const write = (level: Level, message: string, fields: Record<string, unknown>, time: Date): void => {
  const line = JSON.stringify({ time: time.toISOString(), level, message, ...fields })
  if (level === "error" || level === "warn") console.error(line)
  else console.log(line)
}

/** Lines at `threshold` and above. */
export const logAt = (threshold: Level): LogLine => (level, message, fields = {}) => {
  if (rank[level] >= rank[threshold]) write(level, message, fields, new Date())
}

/** A gateway's logger for plain code; outside a gateway (a test building one layer), lines at `info` and above. */
export const GatewayLog = Context.Reference<LogLine>("taskstream/GatewayLog", { defaultValue: () => logAt("info") })

const effectLevel: Record<Level, LogLevel.Severity> = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" }

const levelOf = (level: LogLevel.LogLevel): Level =>
  level === "Error" || level === "Fatal" ? "error" : level === "Warn" ? "warn" : level === "Info" ? "info" : "debug"

const textOf = (message: unknown): string =>
  Array.isArray(message) ? message.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join(" ") : String(message)

/** Effect's logger writing these JSON lines: the message, its level, and the log annotations as fields. */
const jsonLogger = Logger.make<unknown, void>(({ date, fiber, logLevel, message }) =>
  write(levelOf(logLevel), textOf(message), { ...fiber.getRef(References.CurrentLogAnnotations) }, date)
)

/** The gateway's logging at `level`: Effect's logger, its minimum level, and GatewayLog for plain code. */
export const gatewayLogger = (level: Level): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([jsonLogger]),
    Layer.succeed(References.MinimumLogLevel, effectLevel[level]),
    Layer.succeed(GatewayLog, logAt(level))
  )

/** Log `message` at `level` from an effect, with `fields` beside it. */
export const logEffect = (level: Level, message: string, fields: Record<string, unknown> = {}): Effect.Effect<void> =>
  Effect.logWithLevel(effectLevel[level])(message).pipe(Effect.annotateLogs(fields))
