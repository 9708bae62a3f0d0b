/** Gateway URLs, shared by the SSE and WebSocket clients. */
import type { TypeSelector } from "./events.ts"

export interface TaskRef {
  readonly agentId: string
  readonly taskId: string
}

export interface Endpoint {
  /** The gateway's base URL; defaults to the page's origin. */
  readonly baseUrl?: string
  /** A JWT, sent as the `access_token` query parameter (browsers cannot set headers on EventSource or WebSocket). */
  readonly token?: string
}

const pageOrigin = (): string => {
  const location = (globalThis as { location?: { origin?: string } }).location
  if (location?.origin === undefined || location.origin === "null") {
    throw new Error("taskstream client: baseUrl is required outside a browser page")
  }
  return location.origin
}

export const apiUrl = (endpoint: Endpoint, path: string, query: Record<string, string | undefined> = {}): URL => {
  const url = new URL(`/api/v1${path}`, endpoint.baseUrl ?? pageOrigin())
  for (const [name, value] of Object.entries({ ...query, access_token: endpoint.token })) {
    if (value !== undefined) url.searchParams.set(name, value)
  }
  return url
}

export const taskPath = (task: TaskRef): string =>
  `/agents/${encodeURIComponent(task.agentId)}/tasks/${encodeURIComponent(task.taskId)}`

export const typesQuery = (types: TypeSelector | undefined): string | undefined =>
  types === undefined || types.length === 0 ? undefined : types.join(",")
