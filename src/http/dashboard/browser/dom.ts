/**
 * Building the page with DOM calls. Every value from the server goes in as text
 * (`textContent`, text nodes, attributes), never as HTML.
 */

const SVG_NS = "http://www.w3.org/2000/svg"

/** An element of the page shell (assets.ts) by id: the shell always has it. */
export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id)
  if (node === null) throw new Error("the page has no #" + id)
  return node as T
}

export type Child = Node | string | number | null | undefined | false

export interface Props {
  readonly text?: string | number
  readonly className?: string
  readonly on?: { readonly [event: string]: (event: Event) => void }
  readonly dataset?: { readonly [key: string]: string | number }
  /** Any other attribute, set as a string; null or undefined leaves it out. */
  readonly [attribute: string]: unknown
}

const applyProps = (node: HTMLElement, props: Props | null | undefined): void => {
  if (!props) return
  for (const k of Object.keys(props)) {
    const v = props[k]
    if (v === undefined || v === null) continue
    if (k === "text") node.textContent = String(v)
    else if (k === "className") node.className = String(v)
    else if (k === "on") for (const [e, listener] of Object.entries(v as NonNullable<Props["on"]>)) node.addEventListener(e, listener)
    else if (k === "dataset") for (const [d, value] of Object.entries(v as NonNullable<Props["dataset"]>)) node.dataset[d] = String(value)
    else node.setAttribute(k, String(v))
  }
}

export const appendAll = (node: Node, children: Child | ReadonlyArray<Child>): void => {
  const list: ReadonlyArray<Child> = Array.isArray(children) ? children : [children as Child]
  for (const c of list) {
    if (c === null || c === undefined || c === false) continue
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c)
  }
}

export const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  children?: Child | ReadonlyArray<Child>
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag)
  applyProps(node, props)
  appendAll(node, children)
  return node
}

export const svg = (
  tag: string,
  attrs?: { readonly [name: string]: string | number } | null,
  children?: Child | ReadonlyArray<Child>
): SVGElement => {
  const node = document.createElementNS(SVG_NS, tag) as SVGElement
  if (attrs) for (const k of Object.keys(attrs)) node.setAttribute(k, String(attrs[k]))
  appendAll(node, children)
  return node
}

export const clear = (node: Node): void => {
  while (node.firstChild) node.removeChild(node.firstChild)
}

/** Every element matching `selector` under `root`, typed as `T`. */
export const all = <T extends Element = HTMLElement>(selector: string, root: ParentNode = document): Array<T> =>
  Array.from(root.querySelectorAll(selector)) as Array<T>
