// One connection: details, configured capacity and priority classes beside discovered capacity, current
// utilization per window and class, usage over time, a test of its credentials, and delete behind a confirmation
// that names it.

import { capacitySummary, SOURCE_IP } from "../capacity.js";
import { stackedBars } from "../chart.js";
import {
  formatDate,
  formatInteger,
  h,
  humanize,
  replaceChildren,
  spinner,
  startLoad,
  timeElement,
  toast,
  whileBusy,
} from "../dom.js";
import { testButton, testOutput } from "./connection-test.js";

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const RANGES = {
  "24h": { label: "Last 24 hours", span: DAY, granularity: "hour" },
  "7d": { label: "Last 7 days", span: 7 * DAY, granularity: "hour" },
  "30d": { label: "Last 30 days", span: 30 * DAY, granularity: "day" },
};

function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

function definitionList(entries) {
  return h(
    "dl",
    { class: "details" },
    entries.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

function configValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") {
    return h(
      "dl",
      { class: "nested-details" },
      Object.entries(value).map(([key, inner]) => [h("dt", {}, humanize(key)), h("dd", {}, configValue(inner))]),
    );
  }
  return String(value);
}

function configCard(connection, provider) {
  const secrets = new Set(provider?.secretFields ?? []);
  const entries = Object.entries(connection.config ?? {}).map(([key, value]) => [
    humanize(key),
    // Never even the mask the API returns: only that a secret is stored.
    secrets.has(key) ? h("span", { class: "badge secret" }, "stored, encrypted") : configValue(value),
  ]);
  return card("Provider configuration", entries.length ? definitionList(entries) : h("p", {}, "Nothing configured."));
}

function limitsTable(limits, { withScope }) {
  const table = h(
    "table",
    { class: "compact" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Period"),
        h("th", {}, "Requests"),
        h("th", {}, "Tokens"),
        withScope && h("th", {}, "Scope"),
      ),
    ),
    h(
      "tbody",
      {},
      limits.map((limit) =>
        h(
          "tr",
          { class: limit.enabled === false ? "disabled" : undefined },
          h("td", {}, limit.period + (limit.enabled === false ? " (disabled)" : "")),
          h("td", {}, formatInteger(limit.requests)),
          h("td", {}, formatInteger(limit.tokens)),
          withScope && h("td", {}, limit.dimension === SOURCE_IP ? "per source IP" : "connection"),
        ),
      ),
    ),
  );
  return h("div", { class: "table-scroll" }, table);
}

function defaultBadge(name, prioritization) {
  return name === prioritization?.defaultClass && h("span", { class: "badge default" }, "default");
}

function priorityClassesTable(prioritization) {
  return [
    h("h4", {}, "Priority classes"),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "compact priority-classes" },
        h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", {}, "Guaranteed"), h("th", {}, "Maximum"))),
        h(
          "tbody",
          {},
          prioritization.classes.map((priorityClass) =>
            h(
              "tr",
              {},
              h("td", {}, priorityClass.name, defaultBadge(priorityClass.name, prioritization)),
              h("td", {}, `${priorityClass.guaranteedPercent}%`),
              h("td", {}, `${priorityClass.maximumPercent}%`),
            ),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "help" },
      "Shares of the connection's own limits; keys without one of these classes count in the default class.",
    ),
  ];
}

/** Configured limits the provider's own would cut short: its 429s come before ours. */
function aboveDiscovered(configured, models) {
  const warnings = [];
  for (const limit of configured ?? []) {
    if (limit.enabled === false || limit.dimension === SOURCE_IP) continue;
    for (const [model, observed] of models) {
      for (const discovered of observed.capacity ?? []) {
        if (discovered.period !== limit.period) continue;
        for (const unit of ["requests", "tokens"]) {
          if (limit[unit] != null && discovered[unit] != null && limit[unit] > discovered[unit]) {
            warnings.push(
              `${formatInteger(limit[unit])} ${unit} per ${limit.period} is above the ${formatInteger(discovered[unit])} ` +
                `${model} allows: the provider will refuse requests before this limit is reached.`,
            );
          }
        }
      }
    }
  }
  return warnings;
}

function capacityCard(connection) {
  const models = Object.entries(connection.discoveredCapacity?.models ?? {});
  const warnings = aboveDiscovered(connection.capacity, models);
  return card(
    "Capacity",
    h(
      "div",
      { class: "capacity-compare" },
      h(
        "div",
        { class: "configured" },
        h("h3", {}, "Configured"),
        connection.capacity?.length
          ? limitsTable(connection.capacity, { withScope: true })
          : h("p", {}, "No limits: every request is admitted."),
        connection.prioritization && priorityClassesTable(connection.prioritization),
      ),
      h(
        "div",
        { class: "discovered" },
        h("h3", {}, "Discovered from the provider"),
        models.length === 0
          ? h(
              "p",
              { class: "help" },
              "Nothing yet. Limits appear here once the provider reports them (rate-limit headers, or Service Quotas for Bedrock).",
            )
          : models.map(([model, observed]) =>
              h(
                "div",
                { class: "discovered-model" },
                h("h4", {}, model),
                limitsTable(observed.capacity ?? [], { withScope: false }),
                h("p", { class: "help" }, "Observed ", timeElement(observed.observedAt), ` from ${observed.source}`),
              ),
            ),
      ),
    ),
    warnings.length > 0 &&
      h(
        "ul",
        { class: "warnings" },
        warnings.map((warning) => h("li", {}, warning)),
      ),
  );
}

/** `used` of `limit` as a bar; `label` names it for assistive technology, `note` follows its text. */
function meter(used, limit, unit, { label = unit, note } = {}) {
  if (limit === null || limit === undefined)
    return h("p", { class: "meter-text" }, `${formatInteger(used)} ${unit}, no limit`);
  const fill = h("span", { class: "meter-fill" });
  const ratio = limit === 0 ? 1 : Math.min(used / limit, 1);
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  if (ratio >= 0.9) fill.classList.add("high");
  return h(
    "div",
    { class: "meter" },
    h(
      "span",
      {
        class: "meter-track",
        role: "meter",
        "aria-valuemin": "0",
        "aria-valuemax": String(limit),
        "aria-valuenow": String(used),
        "aria-label": label,
      },
      fill,
    ),
    h(
      "span",
      { class: "meter-text" },
      `${formatInteger(used)} of ${formatInteger(limit)} ${unit}`,
      note && ` · ${note}`,
    ),
  );
}

/** One class's part of a window: used of its maximum, with what it is guaranteed and what it has left; nothing
 * for a kind the window does not limit (the window's own line says so). */
function classUsage(usage, prioritization) {
  const unitMeter = (unit, used, guaranteed, maximum, remaining) =>
    maximum != null &&
    meter(used, maximum, unit, {
      label: `${usage.name} ${unit}`,
      note: `${formatInteger(guaranteed)} guaranteed, ${formatInteger(remaining)} left`,
    });
  return h(
    "div",
    { class: "class-usage", dataset: { class: usage.name } },
    h("h4", {}, usage.name, defaultBadge(usage.name, prioritization)),
    unitMeter("requests", usage.requestsUsed, usage.requestsGuaranteed, usage.requestsMaximum, usage.requestsRemaining),
    unitMeter("tokens", usage.tokensUsed, usage.tokensGuaranteed, usage.tokensMaximum, usage.tokensRemaining),
  );
}

async function loadUtilization(holder, ctx, connection) {
  const { connectionId, prioritization } = connection;
  replaceChildren(holder, spinner("Reading counters…"));
  const isLatest = startLoad(holder);
  try {
    const report = await ctx.connections.capacity(connectionId);
    if (!isLatest()) return;
    if (report.windows.length === 0) {
      replaceChildren(holder, h("p", {}, "No enabled limits, so nothing is counted."));
      return;
    }
    replaceChildren(
      holder,
      h(
        "div",
        { class: "windows" },
        report.windows.map((window) =>
          h(
            "div",
            { class: "window" },
            h("h3", {}, window.period + (window.dimension === SOURCE_IP ? ` · your address ${report.sourceIp}` : "")),
            meter(window.requestsUsed, window.requestsLimit, "requests"),
            meter(window.tokensUsed, window.tokensLimit, "tokens"),
            h(
              "p",
              { class: "help" },
              window.resetsAt ? ["Resets ", timeElement(window.resetsAt)] : "Never resets (lifetime)",
            ),
            window.classes?.length > 0 && [
              h("p", { class: "help" }, "By priority class, used of its maximum:"),
              window.classes.map((usage) => classUsage(usage, prioritization)),
            ],
          ),
        ),
      ),
    );
  } catch (error) {
    if (isLatest()) replaceChildren(holder, h("p", { class: "error-message", role: "alert" }, error.message));
  }
}

function bucketStarts(from, to, step) {
  const starts = [];
  for (let time = from; time < to; time += step) starts.push(time);
  return starts;
}

async function loadUsage(holder, ctx, connectionId, rangeKey) {
  const range = RANGES[rangeKey];
  const step = range.granularity === "hour" ? HOUR : DAY;
  const to = Math.floor(Date.now() / step) * step + step;
  const from = to - Math.ceil(range.span / step) * step;
  replaceChildren(holder, spinner("Loading usage…"));
  const isLatest = startLoad(holder);
  try {
    const usage = await ctx.connections.usage(connectionId, new Date(from), new Date(to), range.granularity);
    if (!isLatest()) return;
    const byStart = new Map(usage.buckets.map((bucket) => [new Date(bucket.start).getTime(), bucket]));
    const label = (time) =>
      new Date(time).toLocaleString(
        undefined,
        range.granularity === "hour" && range.span <= DAY
          ? { hour: "2-digit", minute: "2-digit" }
          : { month: "short", day: "numeric" },
      );
    const points = bucketStarts(from, to, step).map((time) => ({ time, bucket: byStart.get(time) }));
    const totals = usage.buckets.reduce(
      (sum, bucket) => ({
        requests: sum.requests + bucket.requests,
        tokens: sum.tokens + bucket.totalTokens,
        errors: sum.errors + bucket.errors,
        refused: sum.refused + bucket.refusedForCapacity,
      }),
      { requests: 0, tokens: 0, errors: 0, refused: 0 },
    );
    const p95 = Math.max(0, ...usage.buckets.map((bucket) => bucket.latencyP95Ms ?? 0));
    const requestChart = stackedBars(
      points.map(({ time, bucket }) => {
        const failed = (bucket?.errors ?? 0) + (bucket?.refusedForCapacity ?? 0);
        return {
          label: label(time),
          title: formatDate(new Date(time).toISOString()),
          values: [Math.max((bucket?.requests ?? 0) - failed, 0), bucket?.errors ?? 0, bucket?.refusedForCapacity ?? 0],
        };
      }),
      [
        { name: "Succeeded", className: "series-ok" },
        { name: "Errors", className: "series-error" },
        { name: "Refused for capacity", className: "series-refused" },
      ],
      `Requests per ${range.granularity}, ${range.label.toLowerCase()}`,
    );
    const tokenChart = stackedBars(
      points.map(({ time, bucket }) => ({
        label: label(time),
        title: formatDate(new Date(time).toISOString()),
        values: [bucket?.promptTokens ?? 0, bucket?.completionTokens ?? 0],
      })),
      [
        { name: "Prompt tokens", className: "series-prompt" },
        { name: "Completion tokens", className: "series-completion" },
      ],
      `Tokens per ${range.granularity}, ${range.label.toLowerCase()}`,
    );
    replaceChildren(
      holder,
      h(
        "dl",
        { class: "totals" },
        [
          ["Requests", formatInteger(totals.requests)],
          ["Tokens", formatInteger(totals.tokens)],
          ["Errors", formatInteger(totals.errors)],
          ["Refused for capacity", formatInteger(totals.refused)],
          ["Worst p95 latency", p95 ? `${formatInteger(p95)} ms` : "—"],
        ].map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))),
      ),
      h("h3", {}, "Requests"),
      requestChart,
      h("h3", {}, "Tokens"),
      tokenChart,
    );
  } catch (error) {
    if (isLatest()) replaceChildren(holder, h("p", { class: "error-message", role: "alert" }, error.message));
  }
}

function confirmDelete(ctx, connection, etag) {
  const typed = h("input", { type: "text", autocomplete: "off", spellcheck: "false", "aria-label": "Connection name" });
  const problem = h("p", { class: "field-error", role: "alert", hidden: true });
  const remove = h("button", { type: "button", class: "danger", disabled: true }, `Delete ${connection.name}`);
  const dialog = h(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, `Delete “${connection.name}”?`),
    h(
      "p",
      {},
      "Its stored credentials are destroyed and applications that use it start getting errors. This cannot be undone.",
    ),
    h("label", {}, "Type ", h("strong", {}, connection.name), " to confirm", typed),
    problem,
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onClick: () => dialog.close() }, "Cancel"),
      remove,
    ),
  );
  typed.addEventListener("input", () => (remove.disabled = typed.value !== connection.name));
  remove.addEventListener("click", () =>
    whileBusy(remove, "Deleting…", async () => {
      try {
        await ctx.connections.remove(connection.connectionId, etag);
        dialog.close();
        toast(`Deleted ${connection.name}.`, "success");
        ctx.navigate("#/connections");
      } catch (error) {
        problem.textContent =
          error.status === 412
            ? `${error.message} Someone changed it since this page loaded: reload the page and check before deleting.`
            : error.message;
        problem.hidden = false;
      }
    }),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  typed.focus();
}

export async function renderConnectionPage(view, ctx, connectionId) {
  replaceChildren(view, spinner("Loading the connection…"));
  const [providers, loaded] = await Promise.all([ctx.providers(), ctx.connections.get(connectionId)]);
  const { data: connection, etag } = loaded;
  const provider = providers.find((item) => item.id === connection.provider);
  const tested = testOutput();
  const utilization = h("div");
  const usage = h("div");
  const rangeSelect = h(
    "select",
    { "aria-label": "Usage range" },
    Object.entries(RANGES).map(([key, range]) => h("option", { value: key }, range.label)),
  );
  rangeSelect.addEventListener("change", () => loadUsage(usage, ctx, connectionId, rangeSelect.value));
  const refresh = h(
    "button",
    { type: "button", class: "secondary small", onClick: () => loadUtilization(utilization, ctx, connection) },
    "Refresh",
  );

  replaceChildren(
    view,
    h("nav", { class: "breadcrumbs" }, h("a", { href: "#/connections" }, "AI connections"), ` / ${connection.name}`),
    h(
      "div",
      { class: "page-header" },
      h(
        "div",
        {},
        h("h1", {}, connection.name),
        h(
          "p",
          { class: "subtitle" },
          h("span", { class: `provider ${connection.provider}` }, provider?.name ?? connection.provider),
          connection.description && ` · ${connection.description}`,
        ),
      ),
      h(
        "div",
        { class: "actions" },
        testButton(tested, () => ctx.connections.test(connection.connectionId)),
        h("a", { class: "button secondary", href: `#/connections/${connection.connectionId}/edit` }, "Edit"),
        h("button", { type: "button", class: "danger", onClick: () => confirmDelete(ctx, connection, etag) }, "Delete"),
      ),
    ),
    tested,
    h(
      "div",
      { class: "grid" },
      card(
        "Details",
        definitionList([
          ["Connection ID", h("code", {}, connection.connectionId)],
          ["Model prefix", h("code", {}, `${connection.name}/<model>`)],
          ["Capacity", capacitySummary(connection.capacity)],
          ["Allowed models", connection.allowedModels?.length ? connection.allowedModels.join(", ") : "All models"],
          ["Created", [timeElement(connection.createdAt), ` by ${connection.createdBy}`]],
          ["Updated", [timeElement(connection.updatedAt), ` by ${connection.updatedBy}`]],
          ["Credentials changed", timeElement(connection.credentialsUpdatedAt)],
          ["Version", String(connection.version)],
        ]),
      ),
      configCard(connection, provider),
    ),
    capacityCard(connection),
    h(
      "section",
      { class: "card" },
      h("div", { class: "card-header" }, h("h2", {}, "Current utilization"), refresh),
      utilization,
    ),
    h("section", { class: "card" }, h("div", { class: "card-header" }, h("h2", {}, "Usage"), rangeSelect), usage),
  );
  await Promise.all([
    loadUtilization(utilization, ctx, connection),
    loadUsage(usage, ctx, connectionId, rangeSelect.value),
  ]);
}
