/** The tab-sharing state machine of `followTask` (SPEC §12): who leads, who subscribes upstream, what is relayed. */
import { describe, expect, it } from "bun:test"
import type { ConnectionStatus } from "../../src/client/connection.ts"
import { type Election, type ElectionCommand, type ElectionInput, startElection, step, type TabMessage } from "../../src/client/election.ts"

const open: ConnectionStatus = { state: "open", transport: "websocket" }
const sub = (key: string, since?: string) => ({ key, agentId: "a", taskId: "t", ...(since === undefined ? {} : { since }) })

/** Feed inputs in order; return the final state and every command. */
const run = (election: Election, ...inputs: Array<ElectionInput>): [Election, Array<ElectionCommand>] => {
  const all: Array<ElectionCommand> = []
  for (const input of inputs) {
    const [next, commands] = step(election, input)
    election = next
    all.push(...commands)
  }
  return [election, all]
}
const received = (message: TabMessage): ElectionInput => ({ type: "received", message })
const posts = (commands: Array<ElectionCommand>) => commands.flatMap((c) => (c.type === "post" ? [c.message] : []))
const ofType = <T extends ElectionCommand["type"]>(commands: Array<ElectionCommand>, type: T) =>
  commands.filter((c): c is Extract<ElectionCommand, { type: T }> => c.type === type)

describe("tab leader election", () => {
  it("a waiting tab sends its subscriptions to whoever leads, and joins again when a leader announces itself", () => {
    const [waiting, sent] = run(startElection("B"), { type: "join", subscription: sub("b1") })
    expect(posts(sent)).toEqual([{ type: "follow", tab: "B", subscription: sub("b1") }])
    const [follower, commands] = run(waiting, received({ type: "leader", tab: "A", tabs: 2, status: open }))
    expect(follower.role).toBe("follower")
    expect(follower.leader).toBe("A")
    expect(commands).toEqual([{ type: "rejoin" }, { type: "report", status: open, tabs: 2 }])
    // The same leader again only updates what the tab reports.
    const [, again] = run(follower, received({ type: "leader", tab: "A", tabs: 3, status: open }))
    expect(again).toEqual([{ type: "report", status: open, tabs: 3 }])
  })

  it("the elected tab subscribes its own tasks upstream, announces itself, and counts itself", () => {
    const [leader, commands] = run(startElection("A"), { type: "elected" })
    expect(leader.role).toBe("leader")
    expect(commands[0]).toEqual({ type: "rejoin" })
    expect(posts(commands)).toEqual([{ type: "leader", tab: "A", tabs: 1, status: { state: "connecting", transport: undefined } }])
    const [, joined] = run(leader, { type: "join", subscription: sub("a1") })
    expect(ofType(joined, "subscribe")).toEqual([{ type: "subscribe", subscription: sub("a1") }])
    expect(posts(joined)).toEqual([])
  })

  it("the leader carries every tab's subscriptions on its one connection, once each, and watches each new tab", () => {
    const [leader] = run(startElection("A"), { type: "elected" })
    const [next, commands] = run(
      leader,
      received({ type: "hello", tab: "B" }),
      received({ type: "follow", tab: "B", subscription: sub("b1") }),
      received({ type: "follow", tab: "B", subscription: sub("b1", "1-0") }),
      received({ type: "follow", tab: "C", subscription: sub("c1") })
    )
    expect(ofType(commands, "watch_tab")).toEqual([{ type: "watch_tab", tab: "B" }, { type: "watch_tab", tab: "C" }])
    expect(ofType(commands, "subscribe").map((c) => c.subscription.key)).toEqual(["b1", "c1"])
    expect(posts(commands).filter((m) => m.type === "leader").map((m) => m.type === "leader" && m.tabs)).toEqual([2, 3])
    expect(next.tabs.size).toBe(3)
  })

  it("a tab's unfollow stops only its subscription; a tab that is gone loses all of its own", () => {
    const [leader] = run(
      startElection("A"),
      { type: "elected" },
      { type: "join", subscription: sub("a1") },
      received({ type: "follow", tab: "B", subscription: sub("b1") }),
      received({ type: "follow", tab: "B", subscription: sub("b2") })
    )
    const [afterUnfollow, unfollowed] = run(leader, received({ type: "unfollow", tab: "B", key: "b1" }))
    expect(unfollowed).toEqual([{ type: "unsubscribe", key: "b1" }])
    const [gone, commands] = run(afterUnfollow, { type: "tab_gone", tab: "B" })
    expect(ofType(commands, "unsubscribe")).toEqual([{ type: "unsubscribe", key: "b2" }])
    expect(posts(commands)).toEqual([{ type: "leader", tab: "A", tabs: 1, status: { state: "connecting", transport: undefined } }])
    expect([...gone.tabs.keys()]).toEqual(["A"])
    // An unfollow of an unknown key changes nothing.
    expect(run(gone, received({ type: "unfollow", tab: "B", key: "b2" }))[1]).toEqual([])
  })

  it("the leader's own leave unsubscribes upstream; a follower's leave goes to the leader", () => {
    const [leader] = run(startElection("A"), { type: "elected" }, { type: "join", subscription: sub("a1") })
    expect(run(leader, { type: "leave", key: "a1" })[1]).toEqual([{ type: "unsubscribe", key: "a1" }])
    const [follower] = run(startElection("B"), received({ type: "leader", tab: "A", tabs: 2, status: open }))
    expect(posts(run(follower, { type: "leave", key: "b1" })[1])).toEqual([{ type: "unfollow", tab: "B", key: "b1" }])
  })

  it("announces its connection's status to every tab; followers ignore what only a leader handles", () => {
    const [leader] = run(startElection("A"), { type: "elected" }, received({ type: "hello", tab: "B" }))
    const [, commands] = run(leader, { type: "status", status: open })
    expect(posts(commands)).toEqual([{ type: "leader", tab: "A", tabs: 2, status: open }])
    expect(ofType(commands, "report")).toEqual([{ type: "report", status: open, tabs: 2 }])
    const [follower] = run(startElection("B"), received({ type: "leader", tab: "A", tabs: 2, status: open }))
    for (const input of [
      received({ type: "hello", tab: "C" }),
      received({ type: "follow", tab: "C", subscription: sub("c1") }),
      { type: "tab_gone", tab: "C" } as const,
      { type: "status", status: open } as const
    ]) expect(run(follower, input)[1]).toEqual([])
  })

  it("forgets a subscription that ended upstream, so its tab can be counted without it", () => {
    const [leader] = run(startElection("A"), { type: "elected" }, received({ type: "follow", tab: "B", subscription: sub("b1") }))
    const [next] = run(leader, { type: "ended", key: "b1" })
    expect(next.tabs.get("B")!.size).toBe(0)
  })
})
