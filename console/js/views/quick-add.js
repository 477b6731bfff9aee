// Quick add: paste keys for several providers at once; one connection each, with a default capacity,
// created one after the other, and a dialog that says what was created and what failed.

import { capacitySummary } from "../capacity.js";
import { h, replaceChildren, spinner } from "../dom.js";
import { numberValue } from "../field-errors.js";
import { keyOnly } from "../schema-form.js";

// A guard against runaway spend until someone sets real limits; editable before creating.
const DEFAULT_CAPACITY = { minuteRequests: 100, minuteTokens: 100000, dayRequests: 10000 };

function numberField(label, value) {
  const input = h("input", { type: "number", min: "0", step: "1", value: String(value) });
  return { input, label, field: h("label", { class: "inline-field" }, h("span", {}, label), input) };
}

export async function renderQuickAdd(view, ctx) {
  replaceChildren(view, spinner("Loading providers…"));
  const [catalog, connections] = await Promise.all([ctx.providers(), ctx.connections.list()]);
  const providers = catalog.filter(keyOnly);
  // Names are unique per environment: propose the provider's id, or the first free "<id>-<n>".
  const taken = new Set(connections.map((connection) => connection.name.toLowerCase()));
  const freeName = (base) => {
    let name = base;
    for (let n = 2; taken.has(name); n += 1) name = `${base}-${n}`;
    return name;
  };
  const rows = providers.map((provider) => {
    const key = h("input", {
      type: "password",
      autocomplete: "new-password",
      spellcheck: "false",
      placeholder: "Paste the API key",
      "aria-label": `${provider.name} API key`,
    });
    const name = h("input", {
      type: "text",
      value: freeName(provider.id),
      autocomplete: "off",
      "aria-label": `${provider.name} connection name`,
    });
    const tr = h(
      "tr",
      { dataset: { provider: provider.id } },
      h("th", { scope: "row" }, provider.name),
      h("td", { "data-label": "API key" }, key),
      h("td", { "data-label": "Connection name" }, name),
    );
    return { provider, key, name, tr };
  });
  const minuteRequests = numberField("Requests per minute", DEFAULT_CAPACITY.minuteRequests);
  const minuteTokens = numberField("Tokens per minute", DEFAULT_CAPACITY.minuteTokens);
  const dayRequests = numberField("Requests per day", DEFAULT_CAPACITY.dayRequests);
  const problem = h("p", { class: "field-error", role: "alert", hidden: true });
  const progress = h("p", { class: "loading", role: "status", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Create connections");

  const capacity = () => {
    const limits = [];
    const count = (field) => numberValue(field.input, field.label);
    if (count(minuteRequests) !== undefined || count(minuteTokens) !== undefined) {
      limits.push({ period: "minute", requests: count(minuteRequests), tokens: count(minuteTokens) });
    }
    if (count(dayRequests) !== undefined) limits.push({ period: "day", requests: count(dayRequests) });
    return limits;
  };

  const form = h(
    "form",
    { class: "quick-add", novalidate: true, "aria-label": "Quick add" },
    h(
      "p",
      {},
      "Paste the keys you have; providers left empty are skipped. Each key becomes its own connection, encrypted before it is stored.",
    ),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "list quick-add-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Provider"), h("th", {}, "API key"), h("th", {}, "Connection name"))),
        h(
          "tbody",
          {},
          rows.map((row) => row.tr),
        ),
      ),
    ),
    h(
      "fieldset",
      { class: "defaults" },
      h("legend", {}, "Capacity for each new connection"),
      minuteRequests.field,
      minuteTokens.field,
      dayRequests.field,
      h("p", { class: "help" }, "Empty means no limit. You can change each connection's capacity later."),
    ),
    problem,
    progress,
    h("div", { class: "form-actions" }, h("a", { href: "#/connections", class: "button secondary" }, "Cancel"), submit),
  );

  // Typed keys are unsaved until they become connections.
  const unsaved = () => rows.some((row) => row.key.value.trim() !== "");
  ctx.protect(unsaved);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = rows.filter((row) => row.key.value.trim() !== "");
    problem.hidden = chosen.length > 0;
    problem.textContent = "Paste at least one API key.";
    if (chosen.length === 0) return;
    let limits;
    try {
      limits = capacity();
    } catch (inputProblem) {
      problem.textContent = inputProblem.message;
      problem.hidden = false;
      return;
    }
    submit.disabled = true;
    progress.hidden = false;
    const results = [];
    for (const [index, row] of chosen.entries()) {
      progress.textContent = `Creating ${row.name.value.trim() || row.provider.id} (${index + 1} of ${chosen.length})…`;
      const secretField = keyOnly(row.provider);
      try {
        const { data } = await ctx.connections.create({
          name: row.name.value.trim(),
          provider: row.provider.id,
          config: { [secretField]: row.key.value.trim() },
          capacity: limits,
        });
        row.key.value = "";
        results.push({ row, connection: data });
      } catch (error) {
        results.push({ row, error });
      }
    }
    progress.hidden = true;
    submit.disabled = false;
    if (ctx.isCurrent()) showResults(ctx, results, capacitySummary(limits));
  });

  replaceChildren(
    view,
    h("nav", { class: "breadcrumbs" }, h("a", { href: "#/connections" }, "AI connections"), " / Quick add"),
    h("div", { class: "page-header" }, h("h1", {}, "Quick add")),
    form,
  );
}

function showResults(ctx, results, capacityText) {
  const created = results.filter((result) => result.connection);
  const failed = results.filter((result) => result.error);
  const dialog = h(
    "dialog",
    { class: "results-dialog", "aria-labelledby": "quick-add-results" },
    h(
      "h2",
      { id: "quick-add-results" },
      failed.length === 0
        ? `Created ${created.length} connection${created.length === 1 ? "" : "s"}`
        : `Created ${created.length}, ${failed.length} failed`,
    ),
    created.length > 0 &&
      h(
        "section",
        { class: "created" },
        h("h3", {}, "Created"),
        h(
          "ul",
          {},
          created.map(({ connection }) =>
            h(
              "li",
              {},
              h("a", { href: `#/connections/${connection.connectionId}` }, connection.name),
              ` (${connection.provider})`,
            ),
          ),
        ),
        h("p", { class: "help" }, `Capacity: ${capacityText}.`),
      ),
    failed.length > 0 &&
      h(
        "section",
        { class: "failed" },
        h("h3", {}, "Failed"),
        h(
          "ul",
          {},
          failed.map(({ row, error }) =>
            h(
              "li",
              {},
              h("strong", {}, `${row.name.value.trim() || row.provider.id} (${row.provider.name}): `),
              error.message,
            ),
          ),
        ),
        h("p", { class: "help" }, "Their keys are still in the form: fix what the message says and create again."),
      ),
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onClick: () => dialog.close("close") }, "Close"),
      h("button", { type: "button", class: "primary", onClick: () => dialog.close("list") }, "View connections"),
    ),
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (dialog.returnValue === "list") ctx.navigate("#/connections");
  });
  // Links inside the dialog navigate; the dialog must not stay over the next page.
  dialog.addEventListener("click", (event) => {
    if (event.target instanceof HTMLAnchorElement) dialog.close();
  });
  document.body.append(dialog);
  dialog.showModal();
}
