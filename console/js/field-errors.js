// Shows an ApiError where it belongs: each detail under the field its path names (or the nearest
// enclosing one), the API's message at the top of the form, and anything unplaced in that summary.

import { h, replaceChildren } from "./dom.js";

export class FieldErrors {
  constructor(summary) {
    this.summary = summary;
    this.fields = new Map();
  }

  /** `path` as the API names it ("name", "config.apiKey", "capacity[0].tokens"); `field` holds an input. */
  register(path, field) {
    this.fields.set(path, field);
  }

  clear() {
    replaceChildren(this.summary);
    this.summary.hidden = true;
    for (const field of this.fields.values()) {
      field.querySelectorAll(":scope > .field-error").forEach((node) => node.remove());
      field.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    }
  }

  show(error, extra = []) {
    this.clear();
    const unplaced = [];
    for (const detail of error.details ?? []) {
      const field = this.closest(detail.field ?? "");
      if (!field) {
        unplaced.push(detail);
        continue;
      }
      field.append(h("p", { class: "field-error", role: "alert" }, detail.message));
      // Only a field of one input is marked: for a group, the message says which part is wrong.
      const inputs = field.querySelectorAll("input, select, textarea");
      if (inputs.length === 1) inputs[0].setAttribute("aria-invalid", "true");
    }
    replaceChildren(
      this.summary,
      h("p", { class: "error-message" }, error.message),
      unplaced.length > 0 &&
        h(
          "ul",
          {},
          unplaced.map((detail) => h("li", {}, detail.field ? `${detail.field}: ${detail.message}` : detail.message)),
        ),
      extra,
    );
    this.summary.hidden = false;
    this.summary.scrollIntoView({ block: "nearest" });
    return this;
  }

  closest(path) {
    let candidate = path;
    while (candidate) {
      if (this.fields.has(candidate)) return this.fields.get(candidate);
      const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
      candidate = cut > 0 ? candidate.slice(0, cut) : "";
    }
    return null;
  }
}

export function errorSummary() {
  return h("div", { class: "form-errors", role: "alert", hidden: true });
}

/** What the browser itself knows is wrong before anything is sent, such as a number field holding "2000e",
 * whose value the DOM reports as empty; shaped like an API error so that it shows the same way. */
export class InputProblem extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.details = [{ field, message }];
  }
}

/** A number input's value: undefined when empty; an InputProblem when the text is not a number. */
export function numberValue(input, field) {
  if (input.validity.badInput) throw new InputProblem(field, "is not a number");
  return input.value.trim() === "" ? undefined : Number(input.value);
}
