/**
 * `h()`: build DOM elements without a framework. Children that are strings become text nodes,
 * so nothing from a workflow or a job result is ever parsed as HTML.
 *
 *   h("button", { type: "button", class: "primary", onclick: submit }, "Run")
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Array<Child | Child[]>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent: Element | DocumentFragment, children: Array<Child | Child[]>): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === "number" ? String(child) : child);
  }
}

/** Replace everything inside `element` with `children`. */
export function replaceChildren(element: Element, ...children: Array<Child | Child[]>): void {
  element.replaceChildren();
  append(element, children);
}

/** The element with this id, which index.html must have: a missing one is a bug, found at start. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no #${id}`);
  return element as T;
}

let counter = 0;
/** A page-unique id for label/for and aria-describedby pairs. */
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** An inline error that assistive tech announces at once. */
export function alertText(message: string): HTMLElement {
  return h("span", { role: "alert", class: "error-inline" }, message);
}
