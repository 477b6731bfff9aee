// Create and edit a connection: general fields, the provider's generated configuration form, capacity rows,
// priority classes and allowed models, and a test of what the form holds before it is saved. Edits are
// conditional on the version that was loaded (If-Match).

import { capacityEditor, normalizedCapacity } from "../capacity.js";
import { h, replaceChildren, spinner, toast, whileBusy } from "../dom.js";
import { errorSummary, FieldErrors } from "../field-errors.js";
import { normalizedPrioritization, priorityEditor } from "../priority-classes.js";
import { schemaForm } from "../schema-form.js";
import { formTestButton, testOutput } from "./connection-test.js";

function textField(errors, { path, label, value = "", help, multiline = false, placeholder }) {
  const id = `field-${path}`;
  const input = multiline
    ? h("textarea", { id, name: path, rows: "3", placeholder })
    : h("input", { id, name: path, type: "text", autocomplete: "off", placeholder });
  input.value = value ?? "";
  const field = h(
    "div",
    { class: "field", dataset: { field: path } },
    h("label", { for: id }, label),
    input,
    help && h("p", { class: "help" }, help),
  );
  errors.register(path, field);
  return { field, input };
}

function parseModels(text) {
  const models = text
    .split(/[\n,]/)
    .map((model) => model.trim())
    .filter(Boolean);
  return models.length > 0 ? models : null;
}

/** The capacity limits and priority classes, or undefined with the problem shown when the browser could not
 * read a number. */
function readLimits(capacity, priority, errors) {
  try {
    return { capacity: capacity.read(), prioritization: priority.read() };
  } catch (inputProblem) {
    errors.show(inputProblem);
    return undefined;
  }
}

function section(title, ...children) {
  return h("section", { class: "form-section" }, h("h2", {}, title), children);
}

export async function renderCreateConnection(view, ctx) {
  replaceChildren(view, spinner("Loading providers…"));
  const providers = await ctx.providers();
  const summary = errorSummary();
  const errors = new FieldErrors(summary);
  const name = textField(errors, {
    path: "name",
    label: "Name",
    help: "Unique in this environment; applications address models as <name>/<model>.",
  });
  const description = textField(errors, { path: "description", label: "Description (optional)", multiline: true });
  const providerId = "field-provider";
  const provider = h(
    "select",
    { id: providerId, name: "provider" },
    providers.map((item) => h("option", { value: item.id }, item.name)),
  );
  const providerHelp = h("p", { class: "help" });
  const providerField = h(
    "div",
    { class: "field", dataset: { field: "provider" } },
    h("label", { for: providerId }, "Provider"),
    provider,
    providerHelp,
  );
  errors.register("provider", providerField);

  const configHolder = h("div");
  let config;
  const showProvider = () => {
    const chosen = providers.find((item) => item.id === provider.value);
    providerHelp.textContent = chosen.description;
    config = schemaForm(chosen.configSchema, { secretFields: chosen.secretFields, errors });
    replaceChildren(configHolder, config.element);
  };
  provider.addEventListener("change", showProvider);
  showProvider();
  errors.register("config", configHolder);

  const capacity = capacityEditor([], errors);
  const priority = priorityEditor(null, errors);
  const models = textField(errors, {
    path: "allowedModels",
    label: "Allowed models (optional)",
    multiline: true,
    placeholder: "gpt-4o\ngpt-4o-mini",
    help: "One per line. Leave empty to allow every model of the provider.",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Create connection");
  const readBody = () => {
    const limits = readLimits(capacity, priority, errors);
    if (!limits) return undefined;
    const body = {
      name: name.input.value.trim(),
      provider: provider.value,
      config: config.read(),
      ...limits,
      allowedModels: parseModels(models.input.value),
    };
    if (description.input.value.trim()) body.description = description.input.value.trim();
    return body;
  };
  const tested = testOutput();
  // before anything is saved: the API tests the body that would create the connection
  const test = formTestButton(tested, errors, readBody, (body) => ctx.connections.testNew(body));

  const form = h(
    "form",
    { class: "connection-form", novalidate: true, "aria-label": "Create connection" },
    summary,
    section("General", name.field, description.field, providerField),
    section("Provider configuration", configHolder),
    section("Limits", capacity.element, priority.element, models.field),
    tested,
    h(
      "div",
      { class: "form-actions" },
      h("a", { href: "#/connections", class: "button secondary" }, "Cancel"),
      test,
      submit,
    ),
  );
  let unsaved = false;
  form.addEventListener("input", () => (unsaved = true));
  ctx.protect(() => unsaved);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = readBody();
    if (!body) return;
    await whileBusy(submit, "Creating…", async () => {
      try {
        const { data } = await ctx.connections.create(body);
        unsaved = false;
        toast(`Created ${data.name}.`, "success");
        ctx.navigate(`#/connections/${data.connectionId}`);
      } catch (error) {
        errors.show(error);
      }
    });
  });
  replaceChildren(view, h("div", { class: "page-header" }, h("h1", {}, "Create connection")), form);
  name.input.focus();
}

export async function renderEditConnection(view, ctx, connectionId) {
  replaceChildren(view, spinner("Loading the connection…"));
  const [providers, loaded] = await Promise.all([ctx.providers(), ctx.connections.get(connectionId)]);
  const { data: connection, etag } = loaded;
  if (!etag) throw new Error("The API sent no ETag for this connection, so an edit could overwrite another's.");
  const provider = providers.find((item) => item.id === connection.provider);
  const summary = errorSummary();
  const errors = new FieldErrors(summary);
  const name = textField(errors, { path: "name", label: "Name", value: connection.name });
  const description = textField(errors, {
    path: "description",
    label: "Description (optional)",
    value: connection.description,
    multiline: true,
  });
  const config = schemaForm(provider.configSchema, {
    secretFields: provider.secretFields,
    values: connection.config ?? {},
    errors,
  });
  // Errors about the configuration as a whole ("give either iamRoleArn or ...") show beside it.
  const configHolder = h("div", {}, config.element);
  errors.register("config", configHolder);
  const capacity = capacityEditor(connection.capacity, errors);
  const priority = priorityEditor(connection.prioritization, errors);
  const models = textField(errors, {
    path: "allowedModels",
    label: "Allowed models (optional)",
    value: (connection.allowedModels ?? []).join("\n"),
    multiline: true,
    help: "One per line. Leave empty to allow every model of the provider.",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Save");
  const detailsHref = `#/connections/${connection.connectionId}`;
  /** The update's body ({} when nothing changed), or undefined with the problem shown. */
  const readPatch = () => {
    const patch = {};
    const newName = name.input.value.trim();
    if (newName !== connection.name) patch.name = newName;
    const newDescription = description.input.value.trim() || null;
    if (newDescription !== (connection.description?.trim() || null)) patch.description = newDescription;
    const configPatch = config.patch(connection.config ?? {});
    if (Object.keys(configPatch).length > 0) patch.config = configPatch;
    const limits = readLimits(capacity, priority, errors);
    if (!limits) return undefined;
    const { capacity: newCapacity, prioritization: newPrioritization } = limits;
    if (JSON.stringify(normalizedCapacity(newCapacity)) !== JSON.stringify(normalizedCapacity(connection.capacity))) {
      patch.capacity = newCapacity;
    }
    if (
      JSON.stringify(normalizedPrioritization(newPrioritization)) !==
      JSON.stringify(normalizedPrioritization(connection.prioritization))
    ) {
      patch.prioritization = newPrioritization; // null when every class was removed
    }
    const newModels = parseModels(models.input.value);
    if (JSON.stringify(newModels) !== JSON.stringify(connection.allowedModels ?? null)) patch.allowedModels = newModels;
    return patch;
  };
  const tested = testOutput();
  // before saving: the API tests the connection as this update would leave it
  const test = formTestButton(tested, errors, readPatch, (patch) =>
    ctx.connections.test(connection.connectionId, patch),
  );

  const form = h(
    "form",
    { class: "connection-form", novalidate: true, "aria-label": "Edit connection" },
    summary,
    section(
      "General",
      name.field,
      description.field,
      h(
        "div",
        { class: "field" },
        h("span", { class: "label" }, "Provider"),
        h("p", { class: "static" }, provider.name),
      ),
    ),
    section(
      "Provider configuration",
      h(
        "p",
        { class: "help" },
        "Secrets are never shown. Leave a secret empty to keep the stored one; type a new value to replace it.",
      ),
      configHolder,
    ),
    section("Limits", capacity.element, priority.element, models.field),
    tested,
    h(
      "div",
      { class: "form-actions" },
      h("a", { href: detailsHref, class: "button secondary" }, "Cancel"),
      test,
      submit,
    ),
  );
  let unsaved = false;
  form.addEventListener("input", () => (unsaved = true));
  ctx.protect(() => unsaved);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const patch = readPatch();
    if (!patch) return;
    if (Object.keys(patch).length === 0) {
      toast("Nothing changed.");
      return;
    }
    await whileBusy(submit, "Saving…", async () => {
      try {
        await ctx.connections.update(connection.connectionId, patch, etag);
        unsaved = false;
        toast(`Saved ${name.input.value.trim()}.`, "success");
        ctx.navigate(detailsHref);
      } catch (error) {
        const stale = error.status === 412;
        errors.show(
          error,
          stale && [
            h(
              "p",
              {},
              "Someone else changed this connection after you opened it. Reload to edit the current version; your changes here will be discarded.",
            ),
            h("button", { type: "button", class: "secondary", onClick: () => ctx.reload() }, "Reload"),
          ],
        );
      }
    });
  });
  replaceChildren(
    view,
    h(
      "nav",
      { class: "breadcrumbs" },
      h("a", { href: "#/connections" }, "AI connections"),
      " / ",
      h("a", { href: detailsHref }, connection.name),
    ),
    h("div", { class: "page-header" }, h("h1", {}, `Edit ${connection.name}`)),
    form,
  );
}
