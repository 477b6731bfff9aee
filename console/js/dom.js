// Small DOM helpers. Text always goes in through textContent: nothing the API returns is parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.setAttribute("class", value);
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value" || key === "checked" || key === "disabled") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** h("button", {class: "primary", onClick}, "Save") */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return build(parent, {}, children);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const integer = new Intl.NumberFormat();
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** A <time> element: readable text, the exact instant on hover. */
export function timeElement(iso) {
  return h("time", { datetime: iso ?? undefined, title: iso ?? undefined }, formatDate(iso));
}

export const formatInteger = (value) => (value === null || value === undefined ? "—" : integer.format(value));
export const formatCompact = (value) => (value === null || value === undefined ? "—" : compact.format(value));

let toastTimer;
export function toast(message, kind = "info") {
  const region = document.getElementById("toasts");
  region.replaceChildren(h("div", { class: `toast ${kind}` }, message));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => region.replaceChildren(), 6000);
}

/** Marks a button busy while `work` runs, with `label` as its text meanwhile. */
export async function whileBusy(button, label, work) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = original;
  }
}

/** camelCase property names as labels: "iamRoleArn" -> "IAM role ARN". */
const ACRONYMS = { api: "API", url: "URL", iam: "IAM", arn: "ARN", id: "ID", aws: "AWS" };
export function humanize(name) {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[\s_-]+/);
  const text = words.map((word) => ACRONYMS[word] ?? word).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function spinner(text) {
  return h("p", { class: "loading", role: "status" }, text);
}

/** Starts a load into `holder`; the check it returns turns false once a later load into it starts, so that
 * a slow answer never overwrites a newer one. */
export function startLoad(holder) {
  const load = String(Number(holder.dataset.load ?? 0) + 1);
  holder.dataset.load = load;
  return () => holder.dataset.load === load;
}
