/**
 * The dashboard's script (bundled by the gateway, served as /dashboard.js):
 * the task list, and the selected task's timeline through `followTask` —
 * WebSocket or SSE, whichever gets through, one connection shared by every
 * dashboard tab — with the workflow's Pause / Resume / Cancel commands, and a
 * token that can be pasted (or replaced once it expired) without a reload.
 */
import {
  BuiltinEventTypes,
  type CommandKind,
  type EventTypeTable,
  fetchEventTypes,
  type Follow,
  followTask,
  type FollowState,
  type TaskRef,
  type TransportName
} from "../client/index.ts"
import { TaskList, type TaskSummary, taskHash } from "./taskList.ts"
import { Timeline, type WorkflowState } from "./timeline.ts"
import { TokenBox } from "./token.ts"
import { byId, money } from "./view.ts"

const demoEnabled = document.body.dataset.demo === "on"
const HIDDEN_CLOSE_MS = 5 * 60_000
// A new token: the task list at once; a task the old token could not open, again (a follow that is
// only retrying takes the new token at its next attempt and goes on from its last event).
const token = new TokenBox(() => {
  void tasks.refresh()
  if (current?.refused) {
    eventTypesLoaded = loadEventTypes()
    open(parseHash())
  }
})

/** The gateway's event types (custom ones included), for the timeline's categories and endings; the built-ins if it does not answer. */
let eventTypes: EventTypeTable = BuiltinEventTypes
const loadEventTypes = () =>
  fetchEventTypes({ baseUrl: location.origin, token: token.current }).then((types) => void (eventTypes = types), () => undefined)
let eventTypesLoaded = loadEventTypes()

const api = async (path: string, init: RequestInit = {}): Promise<any> => {
  const bearer = token.current()
  const response = await fetch(`/api/v1${path}`, {
    ...init,
    headers: { ...(bearer === "" ? {} : { authorization: `Bearer ${bearer}` }), ...init.headers }
  })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`)
  return body
}

const fatal = byId("fatal")
const connection = byId("connection")

/** The header's connection indicator: state, transport and the tabs sharing the connection. */
const showConnection = (state: FollowState | "idle", transport?: TransportName, tabs = 1) => {
  connection.dataset.status = state
  connection.dataset.transport = transport ?? ""
  connection.textContent = state === "open"
    ? `live · ${transport === "sse" ? "SSE" : "WebSocket"}${tabs > 1 ? ` · shared by ${tabs} tabs` : ""}`
    : state === "idle"
    ? "no task open"
    : state === "closed"
    ? "stream ended"
    : state
}
showConnection("idle")

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
    void tasks.refresh()
  } catch (error) {
    fatal.textContent = `Could not start the demo: ${(error as Error).message}`
  } finally {
    startDemo.disabled = false
  }
})

// --- the selected task
const view = {
  placeholder: byId("placeholder"),
  linkNote: byId("link-note"),
  task: byId("task-view"),
  agent: byId("task-agent"),
  id: byId("task-id"),
  goal: byId("task-goal"),
  status: byId("task-status"),
  cost: byId("task-cost"),
  events: byId("task-events"),
  end: byId("end-banner"),
  waiting: byId("waiting"),
  timeline: byId<HTMLOListElement>("timeline"),
  livePause: byId<HTMLInputElement>("live-pause"),
  liveNote: byId("live-note"),
  commandNote: byId("command-note"),
  buttons: [...document.querySelectorAll<HTMLButtonElement>("[data-command]")]
}

let current: { task: TaskRef; follow: Follow; state: WorkflowState; refused: boolean } | undefined

const ended = (state: WorkflowState) => state !== "running" && state !== "paused"

const showState = (state: WorkflowState) => {
  if (current !== undefined) {
    // A queued command's note is answered by the state it asked for.
    if (current.state !== state) view.commandNote.textContent = ""
    current.state = state
  }
  view.status.textContent = state
  view.status.dataset.status = state
  for (const button of view.buttons) {
    const command = button.dataset.command as CommandKind
    button.disabled = ended(state) || (command === "pause" && state === "paused") || (command === "resume" && state === "running")
  }
  view.livePause.disabled = ended(state)
}

/** `#/<agentId>/<taskId>`, or undefined for an empty hash; `invalid` for any other link. */
const parseHash = (): TaskRef | undefined | "invalid" => {
  if (location.hash === "" || location.hash === "#" || location.hash === "#/") return undefined
  const match = /^#\/([^/]+)\/([^/]+)\/?$/.exec(location.hash)
  if (match === null) return "invalid"
  try {
    return { agentId: decodeURIComponent(match[1]), taskId: decodeURIComponent(match[2]) }
  } catch {
    return "invalid"
  }
}

/** Counts opens: a task whose follow starts after an await is still the one to show. */
let opens = 0

const open = (link: TaskRef | undefined | "invalid") => {
  const opening = ++opens
  current?.follow.close()
  current = undefined
  fatal.textContent = ""
  const task = link === "invalid" ? undefined : link
  tasks.select(task)
  view.placeholder.hidden = task !== undefined
  view.task.hidden = task === undefined
  view.linkNote.hidden = link !== "invalid"
  view.linkNote.textContent = link === "invalid" ? `The link “${location.hash}” does not name a task: task links look like #/<agentId>/<taskId>.` : ""
  document.title = task === undefined ? "taskstream" : `${task.taskId} · taskstream`
  if (task === undefined) return showConnection("idle")
  view.agent.textContent = task.agentId
  view.id.textContent = task.taskId
  view.goal.textContent = ""
  view.cost.textContent = money(0)
  view.events.textContent = "0"
  view.end.hidden = true
  view.timeline.replaceChildren()
  view.waiting.hidden = false
  view.waiting.textContent = `No events yet: waiting for ${task.agentId} to publish the first event of ${task.taskId}…`
  view.livePause.checked = false
  view.liveNote.hidden = true
  view.commandNote.textContent = ""
  showState("running")
  // The gateway's event types first (a custom terminal type ends the timeline), then the events.
  void eventTypesLoaded.then(() => opening === opens && follow(task))
}

const follow = (task: TaskRef) => {
  const openedAt = Date.now()
  const timeline = new Timeline({
    list: view.timeline,
    onState: showState,
    onCost: (cost) => (view.cost.textContent = money(cost)),
    onCount: (count) => {
      view.events.textContent = String(count)
      view.waiting.hidden = count > 0
    },
    onGoal: (goal) => (view.goal.textContent = goal),
    onEnd: (state, text) => {
      view.end.hidden = false
      view.end.dataset.end = state
      view.end.textContent = text
      view.liveNote.hidden = true
    }
  }, eventTypes)
  // Callbacks may run while followTask is still returning (its first state), hence the `let`.
  let following: Follow | undefined
  const connectionChanged = () => following !== undefined && showConnection(following.state, following.transport, following.tabs)
  following = followTask({
    ...task,
    token: token.current,
    // A tab left in the background for minutes gives its share of the connection back.
    closeWhenHidden: HIDDEN_CLOSE_MS,
    // History arrives at once; rows that come later are flashed as new.
    onEvent: (event) => timeline.add(event, Date.now() - openedAt > 1000),
    onResync: (resync) => (view.commandNote.textContent = `Older events were trimmed; showing from ${resync.oldest}`),
    onState: (state) => (following === undefined ? showConnection(state) : connectionChanged()),
    onTransport: connectionChanged,
    onTabs: connectionChanged,
    onError: (error) => {
      fatal.textContent = `${error.code}: ${error.message}`
      if (current !== undefined && current.follow === following) current.refused = true
    }
  })
  connectionChanged()
  current = { task, follow: following, state: "running", refused: false }
}

for (const button of view.buttons) {
  button.addEventListener("click", async () => {
    const target = current
    if (target === undefined) return
    const command = button.dataset.command as CommandKind
    view.commandNote.textContent = `${command} sent…`
    const { agentId, taskId } = target.task
    const before = target.state
    try {
      await api(`/agents/${encodeURIComponent(agentId)}/tasks/${encodeURIComponent(taskId)}/${command}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ reason: "from the dashboard" })
      })
      // The workflow may have answered (or the task ended) while the request was out.
      if (current === target && target.state === before) view.commandNote.textContent = `${command} queued; waiting for the workflow`
      else if (current === target) view.commandNote.textContent = ""
    } catch (error) {
      if (current === target) view.commandNote.textContent = `${command} refused: ${(error as Error).message}`
    }
  })
}

view.livePause.addEventListener("change", () => {
  if (current === undefined) return
  if (view.livePause.checked) current.follow.pause()
  else current.follow.resume()
  view.liveNote.hidden = !view.livePause.checked
})

window.addEventListener("hashchange", () => open(parseHash()))
open(parseHash())
