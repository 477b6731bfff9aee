// Sign in by pasting an API key. It is checked against the API before it is kept, and kept only in
// this tab's session storage.

import { h, replaceChildren, whileBusy } from "../dom.js";

export function renderSignIn(view, { apiFor, apiOrigin, message, onSignedIn }) {
  const id = "field-api-key";
  const key = h("input", {
    id,
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "vmx_…",
    "aria-describedby": "api-key-help",
  });
  const problem = h("p", { class: "field-error", role: "alert", hidden: !message }, message ?? "");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", novalidate: true, "aria-label": "Sign in" },
    h("h1", {}, "Sign in"),
    h("div", { class: "field", dataset: { field: "apiKey" } }, h("label", { for: id }, "API key"), key, problem),
    h(
      "p",
      { id: "api-key-help", class: "help" },
      `The key is sent only to the API at ${apiOrigin}, in a header. It is kept in this tab's session storage and forgotten when the tab closes or you sign out.`,
    ),
    h("div", { class: "form-actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const apiKey = key.value.trim();
    if (!apiKey) {
      problem.textContent = "Paste an API key.";
      problem.hidden = false;
      return;
    }
    await whileBusy(submit, "Checking the key…", async () => {
      try {
        const workspaces = await apiFor(apiKey).workspaces();
        key.value = "";
        onSignedIn(apiKey, workspaces);
      } catch (error) {
        key.setAttribute("aria-invalid", "true");
        problem.textContent = error.message;
        problem.hidden = false;
      }
    });
  });
  replaceChildren(view, h("div", { class: "signin-page" }, form));
  key.focus();
}
