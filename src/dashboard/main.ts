/**
 * The dashboard's script (bundled by the gateway, served as /dashboard.js):
 * the task list, and the selected task's timeline over one WebSocket from
 * the typed client — live delivery that can be paused and caught up, and
 * the workflow's Pause / Resume / Cancel commands.
 */
import { type CommandKind, connectTaskSocket, type Subscription, type TaskRef } from "../client/index.ts"
import { TaskList, type TaskSummary, taskHash } from "./taskList.ts"
import { Timeline, type WorkflowState } from "./timeline.ts"
import { byId, money } from "./view.ts"

const token = new URLSearchParams(location.search).get("access_token") ?? undefined
const demoEnabled = document.body.dataset.demo === "on"

const api = async (path: string, init: RequestInit = {}): Promise<any> => {
  const response = await fetch(`/api/v1${path}`, {
    ...init,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...init.headers }
  })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`)
  return body
}

const fatal = byId("fatal")
const connection = byId("connection")
const socket = connectTaskSocket({
  ...(token === undefined ? {} : { token }),
  onStatus: (status) => {
    connection.dataset.status = status
    connection.textContent = status === "open" ? "live" : status
  }
})

const tasks = new TaskList(byId<HTMLUListElement>("task-list"), byId("no-tasks"), async () => {
  const body = (await api("/tasks?limit=40")) as { tasks: ReadonlyArray<TaskSummary> }
  return body.tasks
})
tasks.start()

// --- the demo button
const startDemo = byId<HTMLButtonElement>("start-demo")
startDemo.disabled = !demoEnabled
startDemo.title = demoEnabled ? "Run a simulated agent in the gateway" : "The demo agent is off: start the gateway with DEMO=1"
byId("demo-hint").textContent = demoEnabled
  ? "Or press “Start demo task” to run a simulated agent in the gateway."
  : "The demo agent is off (start the gateway with DEMO=1 to enable it)."
startDemo.addEventListener("click", async () => {
  startDemo.disabled = true
  try {
    const task = (await api("/demo", { method: "POST" })) as TaskRef
    location.hash = taskHash(task)
    tasks.refresh()
  } catch (error) {
    fatal.textContent = `Could not start the demo: ${(error as Error).message}`
  } finally {
    startDemo.disabled = false
  }
})

// --- the selected task
const view = {
  placeholder: byId("placeholder"),
  task: byId("task-view"),
  agent: byId("task-agent"),
  id: byId("task-id"),
  goal: byId("task-goal"),
  status: byId("task-status"),
  cost: byId("task-cost"),
  events: byId("task-events"),
  end: byId("end-banner"),
  timeline: byId<HTMLOListElement>("timeline"),
  livePause: byId<HTMLInputElement>("live-pause"),
  liveNote: byId("live-note"),
  commandNote: byId("command-note"),
  buttons: [...document.querySelectorAll<HTMLButtonElement>("[data-command]")]
}

let current: { task: TaskRef; subscription: Subscription } | undefined

const showState = (state: WorkflowState) => {
  view.status.textContent = state
  view.status.dataset.status = state
  const ended = state !== "running" && state !== "paused"
  for (const button of view.buttons) {
    const command = button.dataset.command as CommandKind
    button.disabled = ended || (command === "pause" && state === "paused") || (command === "resume" && state === "running")
  }
  view.livePause.disabled = ended
}

const parseHash = (): TaskRef | undefined => {
  const [agentId, taskId] = location.hash.replace(/^#\//, "").split("/").map(decodeURIComponent)
  return agentId && taskId ? { agentId, taskId } : undefined
}

const open = (task: TaskRef | undefined) => {
  current?.subscription.unsubscribe()
  current = undefined
  tasks.select(task)
  view.placeholder.hidden = task !== undefined
  view.task.hidden = task === undefined
  if (task === undefined) return
  view.agent.textContent = task.agentId
  view.id.textContent = task.taskId
  view.goal.textContent = ""
  view.cost.textContent = money(0)
  view.events.textContent = "0"
  view.end.hidden = true
  view.timeline.replaceChildren()
  view.livePause.checked = false
  view.liveNote.hidden = true
  view.commandNote.textContent = ""
  showState("running")
  const openedAt = Date.now()
  const timeline = new Timeline({
    list: view.timeline,
    onState: showState,
    onCost: (cost) => (view.cost.textContent = money(cost)),
    onCount: (count) => (view.events.textContent = String(count)),
    onGoal: (goal) => (view.goal.textContent = goal),
    onEnd: (state, text) => {
      view.end.hidden = false
      view.end.dataset.end = state
      view.end.textContent = text
      view.liveNote.hidden = true
    }
  })
  const subscription = socket.subscribe({
    ...task,
    // History arrives at once; rows that come later are flashed as new.
    onEvent: (event) => timeline.add(event, Date.now() - openedAt > 1000),
    onResync: (resync) => (view.commandNote.textContent = `Older events were trimmed; showing from ${resync.oldest}`),
    onEnd: (end) => {
      if (end === "not_found") fatal.textContent = `Task ${task.taskId} belongs to another agent than ${task.agentId}.`
    },
    onError: (error) => (fatal.textContent = `${error.code}: ${error.message}`)
  })
  current = { task, subscription }
}

for (const button of view.buttons) {
  button.addEventListener("click", async () => {
    if (current === undefined) return
    const command = button.dataset.command as CommandKind
    view.commandNote.textContent = `${command} sent…`
    try {
      await socket.command(current.task, command, "from the dashboard")
      view.commandNote.textContent = `${command} queued; waiting for the workflow`
    } catch (error) {
      view.commandNote.textContent = `${command} refused: ${(error as { message?: string }).message}`
    }
  })
}

view.livePause.addEventListener("change", () => {
  if (current === undefined) return
  if (view.livePause.checked) current.subscription.pause()
  else current.subscription.resume()
  view.liveNote.hidden = !view.livePause.checked
})

window.addEventListener("hashchange", () => open(parseHash()))
open(parseHash())
