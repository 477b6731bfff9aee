// The AI connections of the chosen environment: every page loaded, searched as you type, filtered by
// provider through the API.

import { capacitySummary } from "../capacity.js";
import { h, replaceChildren, spinner, startLoad, timeElement } from "../dom.js";

export async function renderConnectionList(view, ctx) {
  const providers = await ctx.providers();
  const providerNames = Object.fromEntries(providers.map((provider) => [provider.id, provider.name]));
  const search = h("input", {
    type: "search",
    placeholder: "Search by name or description",
    "aria-label": "Search connections",
  });
  const providerFilter = h(
    "select",
    { "aria-label": "Provider" },
    h("option", { value: "" }, "All providers"),
    providers.map((provider) => h("option", { value: provider.id }, provider.name)),
  );
  providerFilter.value = ctx.query.get("provider") ?? "";
  const results = h("div", { class: "results" });
  let connections = [];

  const show = () => {
    const term = search.value.trim().toLowerCase();
    const shown = connections.filter(
      (connection) =>
        !term ||
        connection.name.toLowerCase().includes(term) ||
        (connection.description ?? "").toLowerCase().includes(term),
    );
    if (connections.length === 0) {
      replaceChildren(
        results,
        h(
          "div",
          { class: "empty" },
          h(
            "p",
            {},
            providerFilter.value
              ? `No ${providerNames[providerFilter.value]} connections in this environment.`
              : "No AI connections in this environment yet.",
          ),
          h("a", { class: "button primary", href: "#/connections/new" }, "Create connection"),
        ),
      );
      return;
    }
    if (shown.length === 0) {
      replaceChildren(results, h("p", { class: "empty" }, `No connection matches “${search.value.trim()}”.`));
      return;
    }
    replaceChildren(
      results,
      h(
        "p",
        { class: "count" },
        `${shown.length} of ${connections.length} connection${connections.length === 1 ? "" : "s"}`,
      ),
      h(
        "table",
        { class: "list" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Provider", "Capacity", "Created", "Updated"].map((title) => h("th", { scope: "col" }, title)),
          ),
        ),
        h(
          "tbody",
          {},
          shown.map((connection) =>
            h(
              "tr",
              { dataset: { connectionId: connection.connectionId } },
              h(
                "td",
                { "data-label": "Name" },
                h("a", { href: `#/connections/${connection.connectionId}`, class: "name" }, connection.name),
                connection.description && h("span", { class: "description" }, connection.description),
              ),
              h(
                "td",
                { "data-label": "Provider" },
                h(
                  "span",
                  { class: `provider ${connection.provider}` },
                  providerNames[connection.provider] ?? connection.provider,
                ),
              ),
              h("td", { "data-label": "Capacity" }, capacitySummary(connection.capacity)),
              h("td", { "data-label": "Created" }, timeElement(connection.createdAt)),
              h("td", { "data-label": "Updated" }, timeElement(connection.updatedAt)),
            ),
          ),
        ),
      ),
    );
  };

  const load = async () => {
    const progress = spinner("Loading connections…");
    replaceChildren(results, progress);
    const isLatest = startLoad(results);
    try {
      const loaded = await ctx.connections.list(providerFilter.value || undefined, (count) => {
        progress.textContent = `Loading connections… ${count} so far`;
      });
      if (!isLatest()) return;
      connections = loaded;
      show();
    } catch (error) {
      if (!isLatest()) return;
      replaceChildren(
        results,
        h("div", { class: "form-errors", role: "alert" }, h("p", { class: "error-message" }, error.message)),
      );
    }
  };

  search.addEventListener("input", show);
  providerFilter.addEventListener("change", () => {
    // Kept in the address so that reload and back keep the filter; never anything secret there.
    ctx.replaceQuery({ provider: providerFilter.value || null });
    load();
  });

  replaceChildren(
    view,
    h(
      "div",
      { class: "page-header" },
      h("h1", {}, "AI connections"),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button secondary", href: "#/connections/quick-add" }, "Quick add"),
        h("a", { class: "button primary", href: "#/connections/new" }, "Create connection"),
      ),
    ),
    h("div", { class: "toolbar" }, search, providerFilter),
    results,
  );
  await load();
}
