// Capacity limits: the editor rows, the one-line summary the list shows, and the period names.

import { formatCompact, h } from "./dom.js";
import { numberValue } from "./field-errors.js";

export const PERIODS = ["minute", "hour", "day", "week", "month", "lifetime"];
const PER = { minute: "min", hour: "hour", day: "day", week: "week", month: "month", lifetime: "lifetime" };
export const SOURCE_IP = "source-ip";

/** "100 req · 100K tok /min; 10K req /day per IP", or "No limits". */
export function capacitySummary(capacity) {
  const enabled = (capacity ?? []).filter((limit) => limit.enabled !== false);
  if (enabled.length === 0) return "No limits";
  return enabled
    .map((limit) => {
      const parts = [];
      if (limit.requests !== null && limit.requests !== undefined) parts.push(`${formatCompact(limit.requests)} req`);
      if (limit.tokens !== null && limit.tokens !== undefined) parts.push(`${formatCompact(limit.tokens)} tok`);
      const per = limit.period === "lifetime" ? " lifetime" : ` /${PER[limit.period] ?? limit.period}`;
      return parts.join(" · ") + per + (limit.dimension === SOURCE_IP ? " per IP" : "");
    })
    .join("; ");
}

function numberInput(value, label) {
  const input = h("input", {
    type: "number",
    min: "0",
    step: "1",
    inputmode: "numeric",
    "aria-label": label,
    placeholder: "no limit",
  });
  input.value = value ?? "";
  return input;
}

/** Rows of period, requests, tokens, enabled and per-IP; read() gives the API's `capacity` list. */
export function capacityEditor(initial, errors) {
  const rows = [];
  const body = h("tbody");
  const addButton = h("button", { type: "button", class: "secondary small" }, "Add limit");
  const table = h(
    "table",
    { class: "capacity-editor" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Period"),
        h("th", {}, "Requests"),
        h("th", {}, "Tokens"),
        h("th", {}, "Enabled"),
        h("th", {}, "Per source IP"),
        h("th", {}, h("span", { class: "visually-hidden" }, "Remove")),
      ),
    ),
    body,
  );
  const element = h(
    "fieldset",
    { class: "field capacity-field", dataset: { field: "capacity" } },
    h("legend", {}, "Capacity"),
    h(
      "p",
      { class: "help" },
      "Requests and tokens per window, enforced exactly. Per source IP counts each client address apart. Leave a number empty for no limit on it.",
    ),
    h("div", { class: "table-scroll" }, table),
    h("p", { class: "empty-rows", hidden: true }, "No limits: every request is admitted."),
    addButton,
  );
  errors.register("capacity", element);

  const renumber = () => {
    rows.forEach((row, index) => {
      for (const [name, cell] of Object.entries(row.cells)) errors.register(`capacity[${index}].${name}`, cell);
      // A problem with the row as a whole ("give requests, tokens or both") shows by its numbers.
      errors.register(`capacity[${index}]`, row.cells.requests);
      row.tr.dataset.row = String(index);
    });
    element.querySelector(".empty-rows").hidden = rows.length > 0;
    table.hidden = rows.length === 0;
  };

  const addRow = (limit = { period: "minute", enabled: true }) => {
    const period = h(
      "select",
      { "aria-label": "Period" },
      PERIODS.map((name) => h("option", { value: name }, name)),
    );
    period.value = limit.period;
    const requests = numberInput(limit.requests, "Requests");
    const tokens = numberInput(limit.tokens, "Tokens");
    const enabled = h("input", { type: "checkbox", checked: limit.enabled !== false, "aria-label": "Enabled" });
    const perIp = h("input", {
      type: "checkbox",
      checked: limit.dimension === SOURCE_IP,
      "aria-label": "Per source IP",
    });
    const cells = {
      period: h("td", { "data-label": "Period" }, period),
      requests: h("td", { "data-label": "Requests" }, requests),
      tokens: h("td", { "data-label": "Tokens" }, tokens),
      enabled: h("td", { class: "center", "data-label": "Enabled" }, enabled),
      dimension: h("td", { class: "center", "data-label": "Per source IP" }, perIp),
    };
    const row = { cells, tr: null, read: null };
    const remove = h("button", { type: "button", class: "link danger", "aria-label": "Remove limit" }, "Remove");
    row.tr = h("tr", {}, Object.values(cells), h("td", {}, remove));
    row.read = () => {
      const index = rows.indexOf(row);
      const limitValue = { period: period.value, enabled: enabled.checked };
      const requestCount = numberValue(requests, `capacity[${index}].requests`);
      const tokenCount = numberValue(tokens, `capacity[${index}].tokens`);
      if (requestCount !== undefined) limitValue.requests = requestCount;
      if (tokenCount !== undefined) limitValue.tokens = tokenCount;
      if (perIp.checked) limitValue.dimension = SOURCE_IP;
      return limitValue;
    };
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.tr.remove();
      renumber();
      changed();
    });
    rows.push(row);
    body.append(row.tr);
    renumber();
  };
  // Adding or removing a row is an edit too, for the form's unsaved-changes guard.
  const changed = () => element.dispatchEvent(new Event("input", { bubbles: true }));

  addButton.addEventListener("click", () => {
    addRow();
    changed();
  });
  for (const limit of initial ?? []) addRow(limit);
  renumber();
  return { element, read: () => rows.map((row) => row.read()) };
}

/** Comparable form of a capacity list as the API returns it (nulls and defaults written out). */
export function normalizedCapacity(capacity) {
  return (capacity ?? []).map((limit) => ({
    period: limit.period,
    requests: limit.requests ?? null,
    tokens: limit.tokens ?? null,
    enabled: limit.enabled !== false,
    dimension: limit.dimension ?? null,
  }));
}
