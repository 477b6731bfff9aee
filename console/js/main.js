// The console: loads config.json (the API's URL), keeps the sign-in and the chosen workspace and
// environment, and routes #/... addresses to views. Addresses never carry anything secret.

import { Api, Connections } from "./api.js";
import { h, replaceChildren, toast } from "./dom.js";
import { session } from "./session.js";
import { renderCreateConnection, renderEditConnection } from "./views/connection-form.js";
import { renderConnectionPage } from "./views/connection-page.js";
import { renderConnectionList } from "./views/connections-list.js";
import { renderQuickAdd } from "./views/quick-add.js";
import { renderSignIn } from "./views/signin.js";

const view = document.getElementById("view");
const scopeBar = document.getElementById("scope");
const state = { apiUrl: "", workspaces: null, environments: null, providers: null, signInMessage: null };
// The shown view's "has unsaved changes?" check, and the address it was shown at.
const shown = { hash: "", unsaved: () => false };
const LEAVE_UNSAVED = "Leave this page? Your changes are not saved.";

function apiOrigin() {
  return new URL(state.apiUrl || "/", window.location.href).origin;
}

function apiFor(apiKey, onUnauthorized) {
  return new Api(state.apiUrl, apiKey, onUnauthorized);
}

function signOut(message = null) {
  session.signOut();
  shown.unsaved = () => false; // asked already, or the key no longer works
  Object.assign(state, { workspaces: null, environments: null, providers: null, signInMessage: message });
  replaceChildren(scopeBar);
  navigate("#/signin");
}

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function currentApi() {
  return apiFor(session.apiKey, (error) => signOut(`Signed out: ${error.message}`));
}

/** Loads the workspaces and environments the key can see and settles on one of each. */
async function ensureScope(api) {
  state.workspaces ??= await api.workspaces();
  const workspace = state.workspaces.find((item) => item.workspaceId === session.workspaceId) ?? state.workspaces[0];
  if (!workspace) return null;
  if (state.environments?.workspaceId !== workspace.workspaceId) {
    state.environments = { workspaceId: workspace.workspaceId, items: await api.environments(workspace.workspaceId) };
  }
  const environment =
    state.environments.items.find((item) => item.environmentId === session.environmentId) ??
    state.environments.items[0];
  session.choose(workspace.workspaceId, environment?.environmentId);
  renderScope(workspace, environment);
  return { workspace, environment };
}

function renderScope(workspace, environment) {
  const workspaceSelect = h(
    "select",
    { "aria-label": "Workspace" },
    state.workspaces.map((item) => h("option", { value: item.workspaceId }, item.name)),
  );
  workspaceSelect.value = workspace.workspaceId;
  workspaceSelect.addEventListener("change", () => {
    session.choose(workspaceSelect.value, null);
    navigate("#/connections");
  });
  const environmentSelect = h(
    "select",
    { "aria-label": "Environment" },
    state.environments.items.map((item) => h("option", { value: item.environmentId }, item.name)),
  );
  environmentSelect.value = environment?.environmentId ?? "";
  environmentSelect.disabled = !environment;
  environmentSelect.addEventListener("change", () => {
    session.choose(workspaceSelect.value, environmentSelect.value);
    navigate("#/connections");
  });
  replaceChildren(
    scopeBar,
    h("label", {}, h("span", {}, "Workspace"), workspaceSelect),
    h("label", {}, h("span", {}, "Environment"), environmentSelect),
    h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onClick: () => (!shown.unsaved() || window.confirm(LEAVE_UNSAVED)) && signOut(),
      },
      "Sign out",
    ),
  );
}

function parseHash() {
  const [path, queryString] = window.location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), query: new URLSearchParams(queryString ?? "") };
}

function replaceQuery(values) {
  const { parts, query } = parseHash();
  for (const [name, value] of Object.entries(values)) {
    if (value === null) query.delete(name);
    else query.set(name, value);
  }
  const search = query.toString();
  window.history.replaceState(null, "", `#/${parts.join("/")}${search ? `?${search}` : ""}`);
}

/** Leaving a form with unsaved changes asks first; declining puts the address back. */
function leave() {
  if (shown.unsaved() && !window.confirm(LEAVE_UNSAVED)) {
    window.history.replaceState(null, "", shown.hash);
    return;
  }
  route();
}

async function route() {
  const { parts, query } = parseHash();
  Object.assign(shown, { hash: window.location.hash, unsaved: () => false });
  document.querySelectorAll("dialog").forEach((dialog) => dialog.close());
  if (!session.apiKey) {
    if (parts[0] !== "signin") {
      navigate("#/signin");
      return;
    }
    renderSignIn(view, {
      apiFor: (apiKey) => apiFor(apiKey),
      apiOrigin: apiOrigin(),
      message: state.signInMessage,
      onSignedIn(apiKey, workspaces) {
        session.signIn(apiKey);
        Object.assign(state, { workspaces, signInMessage: null });
        navigate("#/connections");
      },
    });
    return;
  }
  if (parts[0] === "signin" || parts.length === 0) {
    navigate("#/connections");
    return;
  }
  const api = currentApi();
  try {
    const scope = await ensureScope(api);
    if (!scope?.environment) {
      replaceChildren(
        view,
        h(
          "div",
          { class: "empty" },
          h("h1", {}, "No environment"),
          h(
            "p",
            {},
            scope
              ? `Workspace ${scope.workspace.name} has no environment yet: create one with the API.`
              : "This key sees no workspace.",
          ),
        ),
      );
      return;
    }
    const ctx = {
      query,
      navigate,
      protect: (unsaved) => (shown.unsaved = unsaved),
      replaceQuery,
      connections: new Connections(api, scope.workspace.workspaceId, scope.environment.environmentId),
      providers: () =>
        (state.providers ??= api.providers().catch((error) => {
          state.providers = null;
          throw error;
        })),
    };
    const [section, id, action] = parts;
    if (section !== "connections") await renderNotFound();
    else if (!id) await renderConnectionList(view, ctx);
    else if (id === "new") await renderCreateConnection(view, ctx);
    else if (id === "quick-add") await renderQuickAdd(view, ctx);
    else if (!action) await renderConnectionPage(view, ctx, id);
    else if (action === "edit") await renderEditConnection(view, ctx, id);
    else await renderNotFound();
  } catch (error) {
    if (error.status === 401) return;
    replaceChildren(
      view,
      h(
        "div",
        { class: "form-errors", role: "alert" },
        h("p", { class: "error-message" }, error.message),
        h("p", {}, h("a", { href: "#/connections" }, "Back to AI connections")),
      ),
    );
  }
}

async function renderNotFound() {
  replaceChildren(
    view,
    h(
      "div",
      { class: "empty" },
      h("h1", {}, "Not found"),
      h("p", {}, h("a", { href: "#/connections" }, "Back to AI connections")),
    ),
  );
}

async function boot() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: ${response.status}`);
    state.apiUrl = (await response.json()).apiUrl ?? "";
  } catch (error) {
    replaceChildren(
      view,
      h(
        "p",
        { class: "error-message", role: "alert" },
        `The console cannot find its configuration (${error.message}).`,
      ),
    );
    return;
  }
  window.addEventListener("hashchange", leave);
  window.addEventListener("beforeunload", (event) => {
    if (shown.unsaved()) event.preventDefault();
  });
  // A link to the page already shown changes no hash; it should still read the list afresh.
  document.querySelector(".brand").addEventListener("click", (event) => {
    event.preventDefault();
    navigate("#/connections");
  });
  window.addEventListener("unhandledrejection", (event) =>
    toast(event.reason?.message ?? String(event.reason), "error"),
  );
  await route();
}

boot();
