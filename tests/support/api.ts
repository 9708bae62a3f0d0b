/** Small HTTP helpers against a running gateway. */
export const taskPath = (agentId: string, taskId: string) => `/api/v1/agents/${agentId}/tasks/${taskId}`

export const postEvents = async (baseUrl: string, agentId: string, taskId: string, body: unknown) => {
  const response = await fetch(`${baseUrl}${taskPath(agentId, taskId)}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json().catch(() => null)) as any, headers: response.headers }
}

export const step = (n: number, extra: Record<string, unknown> = {}) => ({ type: "WorkflowStepStarted", data: { step: n, ...extra } })

export const history = async (baseUrl: string, agentId: string, taskId: string, query = "") => {
  const response = await fetch(`${baseUrl}${taskPath(agentId, taskId)}/events${query}`)
  return { status: response.status, body: (await response.json()) as any }
}
