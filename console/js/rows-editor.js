// A fieldset holding a table of rows to add and remove (the capacity limits, the priority classes). Each row's
// cells are registered with FieldErrors under the API's paths, `<path>[<index>].<column>`, renumbered as rows
// come and go.

import { h } from "./dom.js";

/** A whole-number input for a row's cell; `max` and `placeholder` as the column needs. */
export function numberInput(value, label, { max, placeholder } = {}) {
  const input = h("input", {
    type: "number",
    min: "0",
    max,
    step: "1",
    inputmode: "numeric",
    "aria-label": label,
    placeholder,
  });
  input.value = value ?? "";
  return input;
}

/**
 * `columns`: [{ key, title, center }]; `buildRow(item)` gives { controls: { key: element }, read(index) } for one
 * row. `rowErrorsAt` is the column where a problem with a row as a whole shows. `onRowsChange` runs after a row
 * is added or removed. Returns { element, rows, addRow(item), read() }.
 */
export function rowsEditor(
  errors,
  { path, legend, help, columns, buildRow, rowErrorsAt, addLabel, removeLabel, empty, tableClass, onRowsChange },
) {
  const rows = [];
  const body = h("tbody");
  const addButton = h("button", { type: "button", class: "secondary small" }, addLabel);
  const table = h(
    "table",
    { class: `rows-editor ${tableClass}` },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map((column) => h("th", {}, column.title)),
        h("th", {}, h("span", { class: "visually-hidden" }, "Remove")),
      ),
    ),
    body,
  );
  const emptyRows = h("p", { class: "empty-rows", hidden: true }, empty);
  const element = h(
    "fieldset",
    { class: "field rows-field", dataset: { field: path } },
    h("legend", {}, legend),
    h("p", { class: "help" }, help),
    h("div", { class: "table-scroll" }, table),
    emptyRows,
    addButton,
  );
  errors.register(path, element);

  const renumber = () => {
    rows.forEach((row, index) => {
      for (const [key, cell] of Object.entries(row.cells)) errors.register(`${path}[${index}].${key}`, cell);
      errors.register(`${path}[${index}]`, row.cells[rowErrorsAt]);
      row.tr.dataset.row = String(index);
    });
    emptyRows.hidden = rows.length > 0;
    table.hidden = rows.length === 0;
  };
  // Adding or removing a row is an edit too, for the form's unsaved-changes guard.
  const changed = () => element.dispatchEvent(new Event("input", { bubbles: true }));

  const addRow = (item) => {
    const built = buildRow(item);
    const cells = Object.fromEntries(
      columns.map((column) => [
        column.key,
        h(
          "td",
          { class: column.center ? "center" : undefined, "data-label": column.title },
          built.controls[column.key],
        ),
      ]),
    );
    const remove = h("button", { type: "button", class: "link danger", "aria-label": removeLabel }, "Remove");
    const row = { cells, tr: h("tr", {}, Object.values(cells), h("td", {}, remove)), read: built.read };
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.tr.remove();
      renumber();
      onRowsChange?.();
      changed();
    });
    rows.push(row);
    body.append(row.tr);
    renumber();
    onRowsChange?.();
    return row;
  };

  addButton.addEventListener("click", () => {
    addRow();
    changed();
  });
  renumber();
  return { element, rows, addRow, read: () => rows.map((row, index) => row.read(index)) };
}
