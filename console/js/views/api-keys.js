// The workspace's API keys: create one (its role, environments and priority class; the key is shown once, with
// a copy button), list them, change a key's priority class in a dialog, and revoke one behind a confirmation
// that names it. Administrators only: the API refuses anyone else, and the page says so.

import { h, replaceChildren, spinner, timeElement, toast, whileBusy } from "../dom.js";
import { errorSummary, FieldErrors } from "../field-errors.js";

const ROLES = {
  admin: "Admin: everything in the workspace, keys included",
  editor: "Editor: manage connections and send completions",
  viewer: "Viewer: read only",
  gateway: "Gateway: send completions only",
};
// The roles that send no completions, so have no priority class to count them in: the API refuses one.
const WITHOUT_COMPLETIONS = new Set(["viewer"]);

export async function renderApiKeys(view, ctx) {
  replaceChildren(view, spinner("Loading API keys…"));
  const keys = await ctx.apiKeys.list();
  const environmentNames = Object.fromEntries(ctx.environments.map((item) => [item.environmentId, item.name]));
  const list = h("div");
  let shown = keys;
  const showList = (items) => {
    shown = items;
    replaceChildren(list, keyTable(ctx, items, environmentNames, changed));
  };
  // The API's answer to a change is the key as it now is: its row is redrawn from it, with no second request.
  const changed = (key) => showList(shown.map((item) => (item.keyId === key.keyId ? key : item)));
  showList(keys);
  replaceChildren(
    view,
    h("div", { class: "page-header" }, h("h1", {}, `API keys of ${ctx.workspace.name}`)),
    h(
      "div",
      { class: "grid" },
      createForm(ctx, async () => showList(await ctx.apiKeys.list())),
    ),
    h("section", { class: "card" }, h("h2", {}, "Keys"), list),
  );
}

function keyTable(ctx, keys, environmentNames, changed) {
  if (keys.length === 0) return h("p", { class: "empty" }, "No API keys yet.");
  const environments = (ids) => (ids ? ids.map((id) => environmentNames[id] ?? id).join(", ") : "All environments");
  return h(
    "table",
    { class: "list" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Role", "Environments", "Priority class", "Created", "Status"].map((title) =>
          h("th", { scope: "col" }, title),
        ),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
      ),
    ),
    h(
      "tbody",
      {},
      keys.map((key) =>
        h(
          "tr",
          { dataset: { keyId: key.keyId } },
          h("td", {}, key.name, key.platformAdmin && h("span", { class: "badge" }, "platform admin")),
          h("td", {}, key.role),
          h("td", {}, environments(key.environmentIds)),
          h("td", {}, key.priorityClass ?? "—"),
          h("td", {}, timeElement(key.createdAt), ` by ${key.createdBy}`),
          h("td", {}, key.revokedAt ? ["Revoked ", timeElement(key.revokedAt)] : "Active"),
          h(
            "td",
            {},
            !key.revokedAt &&
              h(
                "div",
                { class: "row-actions" },
                !WITHOUT_COMPLETIONS.has(key.role) &&
                  h(
                    "button",
                    {
                      type: "button",
                      class: "secondary small",
                      dataset: { action: "change-class" },
                      onClick: (event) => changeClass(ctx, key, event.currentTarget, changed),
                    },
                    "Change class",
                    h("span", { class: "visually-hidden" }, ` of ${key.name}`),
                  ),
                h(
                  "button",
                  { type: "button", class: "danger small", onClick: () => confirmRevoke(ctx, key) },
                  `Revoke ${key.name}`,
                ),
              ),
          ),
        ),
      ),
    ),
  );
}

function createForm(ctx, reload) {
  const summary = errorSummary();
  const errors = new FieldErrors(summary);
  const name = h("input", { id: "key-name", name: "name", type: "text", autocomplete: "off" });
  const nameField = h(
    "div",
    { class: "field", dataset: { field: "name" } },
    h("label", { for: "key-name" }, "Name"),
    name,
  );
  errors.register("name", nameField);
  const role = h(
    "select",
    { id: "key-role", name: "role" },
    Object.entries(ROLES).map(([value, label]) => h("option", { value }, label)),
  );
  role.value = "gateway";
  const roleField = h(
    "div",
    { class: "field", dataset: { field: "role" } },
    h("label", { for: "key-role" }, "Role"),
    role,
  );
  errors.register("role", roleField);
  const everywhere = h("input", { type: "checkbox", id: "key-everywhere", checked: true });
  const chosen = ctx.environments.map((environment) => ({
    environment,
    box: h("input", { type: "checkbox", value: environment.environmentId, disabled: true }),
  }));
  everywhere.addEventListener("change", () => chosen.forEach(({ box }) => (box.disabled = everywhere.checked)));
  const environmentsField = h(
    "fieldset",
    { class: "field", dataset: { field: "environmentIds" } },
    h("legend", {}, "Environments"),
    h("label", { class: "checkbox" }, everywhere, " Every environment, present and future"),
    chosen.map(({ environment, box }) => h("label", { class: "checkbox" }, box, ` ${environment.name}`)),
  );
  errors.register("environmentIds", environmentsField);
  const priorityClass = h("input", {
    id: "key-priority-class",
    name: "priorityClass",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "key-priority-class-help",
  });
  const priorityHelp = h("p", { class: "help", id: "key-priority-class-help" });
  const showPriorityClass = () => {
    priorityClass.disabled = WITHOUT_COMPLETIONS.has(role.value);
    priorityHelp.textContent = priorityClass.disabled
      ? "This role sends no completions, so it has no priority class."
      : "Its completions count in this class on connections that have it, and in a connection's default class elsewhere. Leave empty for the default class everywhere.";
  };
  role.addEventListener("change", showPriorityClass);
  showPriorityClass();
  const priorityField = h(
    "div",
    { class: "field", dataset: { field: "priorityClass" } },
    h("label", { for: "key-priority-class" }, "Priority class (optional)"),
    priorityClass,
    priorityHelp,
  );
  errors.register("priorityClass", priorityField);
  const submit = h("button", { type: "submit", class: "primary" }, "Create API key");
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-label": "Create API key" },
    h("h2", {}, "Create an API key"),
    summary,
    nameField,
    roleField,
    environmentsField,
    priorityField,
    h("div", { class: "form-actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), role: role.value };
    if (!everywhere.checked) body.environmentIds = chosen.filter(({ box }) => box.checked).map(({ box }) => box.value);
    if (!priorityClass.disabled && priorityClass.value.trim()) body.priorityClass = priorityClass.value.trim();
    await whileBusy(submit, "Creating…", async () => {
      try {
        errors.clear();
        const issued = await ctx.apiKeys.create(body);
        form.reset();
        role.value = "gateway";
        showPriorityClass();
        everywhere.checked = true;
        chosen.forEach(({ box }) => Object.assign(box, { checked: false, disabled: true }));
        showIssued(issued);
        await reload();
      } catch (error) {
        errors.show(error);
      }
    });
  });
  return form;
}

/** The one time the key itself is shown. */
function showIssued(issued) {
  const secret = h("input", { type: "text", readonly: true, value: issued.apiKey, "aria-label": "The new API key" });
  const copied = h("p", { class: "help", role: "status" });
  const copy = h("button", { type: "button", class: "primary" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(issued.apiKey);
      copied.textContent = "Copied.";
    } catch {
      secret.select();
      copied.textContent = "Copying was refused by the browser: the key is selected, copy it yourself.";
    }
  });
  const dialog = h(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": "issued-title" },
    h("h2", { id: "issued-title" }, `API key ${issued.name} created`),
    h("p", {}, "Copy it now: it is shown only once, and it cannot be read again."),
    h("div", { class: "copy-row" }, secret, copy),
    copied,
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onClick: () => dialog.close() }, "Done"),
    ),
  );
  // the key leaves the page with the dialog
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  secret.select();
}

/** Changes the class of a key in use, without a new key; an empty input sends null: no class. */
function changeClass(ctx, key, opener, changed) {
  const summary = errorSummary();
  const errors = new FieldErrors(summary);
  const input = h("input", {
    id: "change-class-input",
    name: "priorityClass",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    value: key.priorityClass ?? "",
    "aria-describedby": "change-class-help",
  });
  const field = h(
    "div",
    { class: "field", dataset: { field: "priorityClass" } },
    h("label", { for: "change-class-input" }, "Priority class"),
    input,
    h(
      "p",
      { class: "help", id: "change-class-help" },
      "Leave empty for no class: the connections' default classes. Applications already using the key move to the new class within a minute.",
    ),
  );
  errors.register("priorityClass", field);
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h(
    "form",
    { novalidate: true },
    summary,
    field,
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onClick: () => dialog.close() }, "Cancel"),
      save,
    ),
  );
  const dialog = h(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": "change-class-title" },
    h("h2", { id: "change-class-title" }, `Priority class of “${key.name}”`),
    form,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(save, "Saving…", async () => {
      try {
        errors.clear();
        const updated = await ctx.apiKeys.setPriorityClass(key.keyId, input.value.trim() || null);
        changed(updated);
        dialog.close();
        toast(
          updated.priorityClass
            ? `${key.name} now counts in class ${updated.priorityClass}.`
            : `${key.name} now has no priority class.`,
          "success",
        );
      } catch (error) {
        errors.show(error);
      }
    });
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    // after a change the row was redrawn: focus goes to the same button in the new row
    const button = opener.isConnected
      ? opener
      : document.querySelector(`tr[data-key-id="${CSS.escape(key.keyId)}"] [data-action="change-class"]`);
    button?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  input.select();
}

function confirmRevoke(ctx, key) {
  const problem = h("p", { class: "field-error", role: "alert", hidden: true });
  const revoke = h("button", { type: "button", class: "danger" }, `Revoke ${key.name}`);
  const dialog = h(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": "revoke-title" },
    h("h2", { id: "revoke-title" }, `Revoke “${key.name}”?`),
    h("p", {}, "Every request with it is refused from now on. This cannot be undone."),
    problem,
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onClick: () => dialog.close() }, "Cancel"),
      revoke,
    ),
  );
  revoke.addEventListener("click", () =>
    whileBusy(revoke, "Revoking…", async () => {
      try {
        await ctx.apiKeys.revoke(key.keyId);
        dialog.close();
        toast(`Revoked ${key.name}.`, "success");
        ctx.reload();
      } catch (error) {
        problem.textContent = error.message;
        problem.hidden = false;
      }
    }),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
