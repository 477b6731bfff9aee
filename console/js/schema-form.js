// A provider's configuration form, generated from the JSON Schema that GET /api/v1/providers returns.
// Secret fields are password inputs and are never filled in: the API only ever returns them masked.

import { h, humanize } from "./dom.js";

/** The schema of one property with `$ref` and `anyOf [X, null]` unwrapped. */
function resolve(schema, root) {
  let resolved = schema;
  let nullable = false;
  if (Array.isArray(resolved.anyOf)) {
    const variants = resolved.anyOf.filter((variant) => variant.type !== "null");
    nullable = variants.length < resolved.anyOf.length;
    resolved = { ...variants[0], description: schema.description, title: schema.title };
  }
  if (resolved.$ref) {
    const name = resolved.$ref.split("/").pop();
    resolved = { ...root.$defs?.[name], description: resolved.description ?? root.$defs?.[name]?.description };
  }
  return { schema: resolved, nullable };
}

function sameValue(left, right) {
  return JSON.stringify(left ?? null) === JSON.stringify(right ?? null);
}

/**
 * Builds the form for `schema`. `values` is a stored config (secrets masked) when editing.
 * Returns { element, read(), patch(original) }: read() the full object for a create, patch() an RFC 7396
 * merge patch against the stored config for an edit (untouched secrets are left out, so they stay).
 */
export function schemaForm(schema, { secretFields = [], values = null, path = "config", errors, root = schema }) {
  const editing = values !== null;
  const required = new Set(schema.required ?? []);
  const controls = [];
  const element = h("div", { class: "schema-form" });

  for (const [name, propertySchema] of Object.entries(schema.properties ?? {})) {
    const { schema: property, nullable } = resolve(propertySchema, root);
    const fieldPath = `${path}.${name}`;
    const current = values?.[name] ?? null;
    const secret = secretFields.includes(name) || property.format === "password";
    const label = humanize(name) + (required.has(name) ? "" : " (optional)");
    const id = `field-${fieldPath.replace(/[^a-zA-Z0-9]/g, "-")}`;

    if (property.type === "object" && property.properties) {
      const nested = schemaForm(property, {
        secretFields: [],
        values: editing ? (current ?? {}) : null,
        path: fieldPath,
        errors,
        root,
      });
      const optional = nullable || !required.has(name);
      const toggle = h("input", { type: "checkbox", id, checked: !optional || current !== null });
      const body = h("div", { class: "nested" }, nested.element);
      body.hidden = !toggle.checked;
      toggle.addEventListener("change", () => (body.hidden = !toggle.checked));
      const fieldset = h(
        "fieldset",
        { class: "field nested-field", dataset: { field: fieldPath } },
        h("legend", {}, optional ? h("label", { for: id }, toggle, ` ${humanize(name)}`) : humanize(name)),
        property.description && h("p", { class: "help" }, property.description),
        body,
      );
      errors.register(fieldPath, fieldset);
      element.append(fieldset);
      controls.push({
        name,
        read: () => (toggle.checked ? nested.read() : undefined),
        patch: (original) => {
          if (!toggle.checked) return original == null ? undefined : null;
          if (original == null) return nested.read();
          const inner = nested.patch(original);
          return Object.keys(inner).length > 0 ? inner : undefined;
        },
      });
      continue;
    }

    let input;
    if (Array.isArray(property.enum)) {
      input = h(
        "select",
        { id, name },
        required.has(name)
          ? current === null && h("option", { value: "", disabled: true }, "Choose…")
          : h("option", { value: "" }, property.default ? `Default (${property.default})` : "—"),
        property.enum.map((option) => h("option", { value: option }, option)),
      );
      input.value = current ?? "";
    } else if (property.type === "boolean") {
      input = h("input", { id, name, type: "checkbox", checked: current ?? property.default ?? false });
    } else if (property.type === "integer" || property.type === "number") {
      input = h("input", { id, name, type: "number", step: property.type === "integer" ? "1" : "any" });
      input.value = current ?? "";
    } else {
      input = h("input", {
        id,
        name,
        type: secret ? "password" : "text",
        autocomplete: secret ? "new-password" : "off",
        spellcheck: "false",
        placeholder: secret && editing && current ? "Stored; leave empty to keep it" : (property.default ?? undefined),
      });
      // A stored secret comes back as "********": the input stays empty rather than echo even that.
      input.value = secret ? "" : (current ?? "");
    }

    // An optional stored secret can be removed (say, keys given up for a role); empty keeps it.
    const remove =
      secret && editing && current && !required.has(name)
        ? h("input", { type: "checkbox", id: `${id}-remove`, "aria-label": `Remove the stored ${humanize(name)}` })
        : null;
    remove?.addEventListener("change", () => {
      input.disabled = remove.checked;
      if (remove.checked) input.value = "";
    });
    const field = h(
      "div",
      { class: `field${property.type === "boolean" ? " checkbox" : ""}`, dataset: { field: fieldPath } },
      h("label", { for: id }, label, secret && h("span", { class: "badge secret" }, "secret")),
      input,
      remove && h("label", { class: "remove-secret", for: remove.id }, remove, " Remove the stored value"),
      property.description && h("p", { class: "help" }, property.description),
    );
    errors.register(fieldPath, field);
    element.append(field);

    const read = () => {
      if (property.type === "boolean") return input.checked;
      const text = input.value.trim();
      if (text === "") return undefined;
      return property.type === "integer" || property.type === "number" ? Number(text) : text;
    };
    controls.push({
      name,
      read,
      patch: (original) => {
        const value = read();
        if (remove?.checked) return null;
        if (secret) return value; // typed: replace it; empty: keep what is stored
        if (sameValue(value, original)) return undefined;
        return value ?? null; // cleared: remove it
      },
    });
  }

  return {
    element,
    read() {
      const result = {};
      for (const control of controls) {
        const value = control.read();
        if (value !== undefined) result[control.name] = value;
      }
      return result;
    },
    patch(original) {
      const result = {};
      for (const control of controls) {
        const value = control.patch(original?.[control.name] ?? null);
        if (value !== undefined) result[control.name] = value;
      }
      return result;
    },
  };
}

/** Providers whose whole required configuration is an API key: the ones quick add can create. */
export function keyOnly(provider) {
  const required = provider.configSchema.required ?? [];
  return required.length === 1 && provider.secretFields.includes(required[0]) ? required[0] : null;
}
