// Capacity limits: the editor rows, the one-line summary the list shows, and the period names.

import { formatCompact, h } from "./dom.js";
import { numberValue } from "./field-errors.js";
import { numberInput, rowsEditor } from "./rows-editor.js";

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

/** Rows of period, requests, tokens, enabled and per-IP; read() gives the API's `capacity` list. */
export function capacityEditor(initial, errors) {
  const editor = rowsEditor(errors, {
    path: "capacity",
    legend: "Capacity",
    help: "Requests and tokens per window, enforced exactly. Per source IP counts each client address apart. Leave a number empty for no limit on it.",
    columns: [
      { key: "period", title: "Period" },
      { key: "requests", title: "Requests" },
      { key: "tokens", title: "Tokens" },
      { key: "enabled", title: "Enabled", center: true },
      { key: "dimension", title: "Per source IP", center: true },
    ],
    // A problem with the row as a whole ("give requests, tokens or both") shows by its numbers.
    rowErrorsAt: "requests",
    addLabel: "Add limit",
    removeLabel: "Remove limit",
    empty: "No limits: every request is admitted.",
    tableClass: "capacity-editor",
    buildRow(limit = { period: "minute", enabled: true }) {
      const period = h(
        "select",
        { "aria-label": "Period" },
        PERIODS.map((name) => h("option", { value: name }, name)),
      );
      period.value = limit.period;
      const requests = numberInput(limit.requests, "Requests", { placeholder: "no limit" });
      const tokens = numberInput(limit.tokens, "Tokens", { placeholder: "no limit" });
      const enabled = h("input", { type: "checkbox", checked: limit.enabled !== false, "aria-label": "Enabled" });
      const perIp = h("input", {
        type: "checkbox",
        checked: limit.dimension === SOURCE_IP,
        "aria-label": "Per source IP",
      });
      return {
        controls: { period, requests, tokens, enabled, dimension: perIp },
        read(index) {
          const limitValue = { period: period.value, enabled: enabled.checked };
          const requestCount = numberValue(requests, `capacity[${index}].requests`);
          const tokenCount = numberValue(tokens, `capacity[${index}].tokens`);
          if (requestCount !== undefined) limitValue.requests = requestCount;
          if (tokenCount !== undefined) limitValue.tokens = tokenCount;
          if (perIp.checked) limitValue.dimension = SOURCE_IP;
          return limitValue;
        },
      };
    },
  });
  for (const limit of initial ?? []) editor.addRow(limit);
  return { element: editor.element, read: editor.read };
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
