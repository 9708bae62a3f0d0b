/** Every streaming transport the gateway serves: the one list metrics, limits and accounting iterate. */
export const TRANSPORTS = ["sse", "ws"] as const

export type Transport = (typeof TRANSPORTS)[number]
