// Priority classes: shares of a connection's own capacity windows for the API keys of each class. The editor
// rows (name, guaranteed and maximum percent, which one is the default) and the comparable form an edit checks.

import { h } from "./dom.js";
import { numberValue } from "./field-errors.js";
import { numberInput, rowsEditor } from "./rows-editor.js";

const CLASSES = "prioritization.classes";
const NEW_CLASS = { name: "", guaranteedPercent: 0, maximumPercent: 100 };

/** `initial`: the connection's `prioritization` (or null); read() gives the API's `prioritization`, null when
 * there is no class. */
export function priorityEditor(initial, errors) {
  const defaultRadios = () => [...editor.element.querySelectorAll("input[type='radio']")];
  // The default is always one of the rows: the first, when the chosen one goes.
  const keepADefault = () => {
    const radios = defaultRadios();
    if (radios.length > 0 && !radios.some((radio) => radio.checked)) radios[0].checked = true;
  };
  const editor = rowsEditor(errors, {
    path: CLASSES,
    legend: "Priority classes",
    help:
      "Shares of the connection's own limits (not the per-source-IP ones) for the API keys of each class. " +
      "Guaranteed: the part no other class can take; maximum: the most the class may use, even when the others " +
      "are idle. Keys without one of these classes count in the default. Names: lower-case letters, digits, '-'.",
    columns: [
      { key: "name", title: "Class" },
      { key: "guaranteedPercent", title: "Guaranteed %" },
      { key: "maximumPercent", title: "Maximum %" },
      { key: "default", title: "Default", center: true },
    ],
    rowErrorsAt: "name",
    addLabel: "Add priority class",
    removeLabel: "Remove priority class",
    empty: "No classes: every request shares the limits, first come, first served.",
    tableClass: "priority-editor",
    onRowsChange: keepADefault,
    buildRow(priorityClass = NEW_CLASS) {
      const name = h("input", {
        type: "text",
        autocomplete: "off",
        spellcheck: "false",
        "aria-label": "Class name",
        value: priorityClass.name,
      });
      const guaranteed = numberInput(priorityClass.guaranteedPercent, "Guaranteed %", { max: "100", placeholder: "0" });
      const maximum = numberInput(priorityClass.maximumPercent, "Maximum %", { max: "100", placeholder: "100" });
      const isDefault = h("input", {
        type: "radio",
        name: "defaultClass",
        "aria-label": "Default class",
        checked: priorityClass.name !== "" && priorityClass.name === initial?.defaultClass,
      });
      return {
        controls: { name, guaranteedPercent: guaranteed, maximumPercent: maximum, default: isDefault },
        read(index) {
          const value = { name: name.value.trim() };
          const guaranteedPercent = numberValue(guaranteed, `${CLASSES}[${index}].guaranteedPercent`);
          const maximumPercent = numberValue(maximum, `${CLASSES}[${index}].maximumPercent`);
          if (guaranteedPercent !== undefined) value.guaranteedPercent = guaranteedPercent;
          if (maximumPercent !== undefined) value.maximumPercent = maximumPercent;
          return value;
        },
      };
    },
  });
  // What is wrong with the choice of default, or with the classes as a whole, shows under the table.
  errors.register("prioritization", editor.element);
  for (const priorityClass of initial?.classes ?? []) editor.addRow(priorityClass);
  return {
    element: editor.element,
    read() {
      const classes = editor.read();
      if (classes.length === 0) return null;
      const chosen = defaultRadios().findIndex((radio) => radio.checked);
      return { classes, defaultClass: classes[Math.max(chosen, 0)].name };
    },
  };
}

/** Comparable form of a `prioritization` as the API returns it (defaults written out). */
export function normalizedPrioritization(prioritization) {
  if (!prioritization) return null;
  return {
    classes: prioritization.classes.map((priorityClass) => ({
      name: priorityClass.name,
      guaranteedPercent: priorityClass.guaranteedPercent ?? 0,
      maximumPercent: priorityClass.maximumPercent ?? 100,
    })),
    defaultClass: prioritization.defaultClass,
  };
}
