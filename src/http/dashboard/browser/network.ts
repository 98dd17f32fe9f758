/** The referral network: the signed-in agent's tree, or the operator's forest. */
import { $, appendAll, clear, el } from "./dom.js"
import { micros, shortWallet } from "./format.js"
import { money, state } from "./state.js"
import type { Network, NetworkAgent } from "./types.js"

export const renderNetwork = (n: Network): void => {
  state.network = n
  const root = $("network")
  clear(root)
  clear($("network-earned"))
  appendAll($("network-earned"), ["earned ", money(n.earned_usdc), " USDC"])
  const byWallet: Record<string, NetworkAgent> = {}
  const children: Record<string, Array<NetworkAgent>> = {}
  for (const a of n.agents) byWallet[a.wallet_address] = a
  for (const a of n.agents) {
    const parent = a.referrer_wallet && byWallet[a.referrer_wallet] ? a.referrer_wallet : ""
    ;(children[parent] = children[parent] ?? []).push(a)
  }
  const childrenOf = (wallet: string): Array<NetworkAgent> => children[wallet] ?? []
  const operator = n.scope === "operator"
  const earnedOf = (a: NetworkAgent) => (a.referral_income_usdc === null ? 0n : micros(a.referral_income_usdc))

  const node = (a: NetworkAgent, depth: number): HTMLLIElement => {
    const kids = childrenOf(a.wallet_address).slice().sort((x, y) => (x.agent_name < y.agent_name ? -1 : 1))
    const isRoot = !operator && a.wallet_address === n.root_wallet
    const row = el("div", { className: "node" }, [
      el("span", { className: "name", text: a.agent_name }),
      el("span", { className: "wallet", title: a.wallet_address, text: shortWallet(a.wallet_address) }),
      a.referral_income_usdc !== null
        ? el("span", { className: "earned", title: "referral income" }, ["earned ", money(a.referral_income_usdc, "income")])
        : null,
      a.earned_for_referrer_usdc !== null && a.referrer_wallet
        ? el("span", { className: "for-referrer" }, [
          isRoot ? "" : (operator ? "its referrer earned " : "you earned "),
          money(a.earned_for_referrer_usdc, "for-referrer-amount"),
          " USDC from this agent"
        ])
        : null
    ])
    const li = el("li", { dataset: { wallet: a.wallet_address, depth } }, row)
    if (kids.length > 0 && depth < 12) li.appendChild(el("ul", null, kids.map((k) => node(k, depth + 1))))
    return li
  }

  const roots = childrenOf("").slice()
  if (!operator) {
    const me = n.root_wallet === null ? undefined : byWallet[n.root_wallet]
    if (me && me.referrer_wallet) {
      root.appendChild(el("p", { className: "tree-note" }, ["referred by ", el("span", { className: "wallet", title: me.referrer_wallet, text: shortWallet(me.referrer_wallet) })]))
    }
    root.appendChild(el("ul", null, me ? node(me, 0) : null))
    if (me && childrenOf(me.wallet_address).length === 0) {
      root.appendChild(el("p", { className: "tree-note", text: "No referred agents yet: share your referral code " + (state.session?.agent?.referral_code ?? "") + "." }))
    }
  } else {
    const inNetwork = roots.filter((a) => childrenOf(a.wallet_address).length > 0)
    const alone = roots.filter((a) => childrenOf(a.wallet_address).length === 0)
    inNetwork.sort((x, y) => {
      const d = earnedOf(y) - earnedOf(x)
      return d > 0n ? 1 : d < 0n ? -1 : 0
    })
    root.appendChild(el("ul", null, inNetwork.slice(0, 100).map((a) => node(a, 0))))
    if (inNetwork.length === 0) root.appendChild(el("p", { className: "tree-note", text: "No agent has referred another yet." }))
    if (alone.length > 0) {
      root.appendChild(el("details", null, [
        el("summary", { text: alone.length + " agent" + (alone.length === 1 ? "" : "s") + " outside any referral chain" }),
        el("ul", null, alone.slice(0, 200).map((a) => node(a, 0)))
      ]))
    }
  }
  if (n.truncated) root.appendChild(el("p", { className: "tree-note", text: "Showing " + n.agents.length + " of " + n.total_agents + " agents." }))
}
