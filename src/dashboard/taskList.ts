/** The recently active tasks (GET /api/v1/tasks), polled so the list stays live. */
import type { TaskRef } from "../client/index.ts"
import { ago, el } from "./view.ts"

export interface TaskSummary extends TaskRef {
  readonly lastEventAt: string
  readonly status: "running" | "paused" | "completed" | "failed" | "cancelled"
}

const POLL_MS = 2000

export const taskHash = (task: TaskRef) => `#/${encodeURIComponent(task.agentId)}/${encodeURIComponent(task.taskId)}`

export class TaskList {
  private tasks: ReadonlyArray<TaskSummary> = []
  private selected: TaskRef | undefined
  private readonly emptyText: string

  constructor(
    private readonly list: HTMLUListElement,
    private readonly empty: HTMLElement,
    private readonly fetchTasks: () => Promise<ReadonlyArray<TaskSummary>>
  ) {
    this.emptyText = empty.textContent ?? ""
  }

  start(): void {
    const poll = async () => {
      await this.refresh()
      setTimeout(poll, POLL_MS)
    }
    void poll()
  }

  /** Fetch the list again; a refusal (no or an expired token) is shown in place of the list. */
  async refresh(): Promise<void> {
    try {
      this.tasks = await this.fetchTasks()
      this.empty.textContent = this.emptyText
    } catch (error) {
      this.tasks = []
      this.empty.textContent = `Could not list the tasks: ${(error as Error).message}`
    }
    this.render()
  }

  select(task: TaskRef | undefined): void {
    this.selected = task
    this.render()
  }

  private render(): void {
    const now = Date.now()
    this.empty.hidden = this.tasks.length > 0
    this.list.replaceChildren(
      ...this.tasks.map((task) => {
        const current = this.selected?.agentId === task.agentId && this.selected.taskId === task.taskId
        return el(
          "li",
          {},
          el(
            "a",
            { href: taskHash(task), "data-status": task.status, "aria-current": String(current), title: task.status },
            el("span", { class: "dot" }),
            el("span", { class: "name" }, task.taskId),
            el("span", { class: "when" }, ago(task.lastEventAt, now)),
            el("span", { class: "agent" }, task.agentId)
          )
        )
      })
    )
  }
}
