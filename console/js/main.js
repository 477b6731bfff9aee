// The console: loads config.json (the API's URL), keeps the sign-in and the chosen workspace and
// environment, and routes #/... addresses to views. Addresses never carry anything secret.

import { Api, ApiKeys, Connections } from "./api.js";
import { h, replaceChildren, toast } from "./dom.js";
import { session } from "./session.js";
import { renderCreateConnection, renderEditConnection } from "./views/connection-form.js";
import { renderConnectionPage } from "./views/connection-page.js";
import { renderConnectionList } from "./views/connections-list.js";
import { renderApiKeys } from "./views/api-keys.js";
import { renderQuickAdd } from "./views/quick-add.js";
import { renderSignIn } from "./views/signin.js";

const view = document.getElementById("view");
const scopeBar = document.getElementById("scope");
const state = { apiUrl: "", workspaces: null, environments: null, providers: null, signInMessage: null };
// The shown view's "has unsaved changes?" check, and the address it was shown at.
const shown = { hash: "", unsaved: () => false };
const LEAVE_UNSAVED = "Leave this page? Your changes are not saved.";
let navigations = 0;

function apiOrigin() {
  return new URL(state.apiUrl || "/", window.location.href).origin;
}

function apiFor(apiKey, onUnauthorized) {
  return new Api(state.apiUrl, apiKey, onUnauthorized);
}

function signOut(message = null) {
  navigations += 1; // whatever was loading belongs to the key that is gone
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
async function ensureScope(api, isCurrent) {
  const workspaces = state.workspaces ?? (await api.workspaces());
  if (!isCurrent()) return null;
  state.workspaces = workspaces;
  const workspace = workspaces.find((item) => item.workspaceId === session.workspaceId) ?? workspaces[0];
  if (!workspace) return null;
  if (state.environments?.workspaceId !== workspace.workspaceId) {
    const items = await api.environments(workspace.workspaceId);
    if (!isCurrent()) return null;
    state.environments = { workspaceId: workspace.workspaceId, items };
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
    if (shown.unsaved() && !window.confirm(LEAVE_UNSAVED)) {
      workspaceSelect.value = workspace.workspaceId;
      return;
    }
    shown.unsaved = () => false;
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
    if (shown.unsaved() && !window.confirm(LEAVE_UNSAVED)) {
      environmentSelect.value = environment.environmentId;
      return;
    }
    shown.unsaved = () => false;
    session.choose(workspaceSelect.value, environmentSelect.value);
    navigate("#/connections");
  });
  replaceChildren(
    scopeBar,
    h("a", { href: "#/connections" }, "Connections"),
    h("a", { href: "#/api-keys" }, "API keys"),
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
  // Each navigation renders into a page of its own: one that is overtaken by a later navigation (or a
  // sign-out) finishes into a detached element, and may neither guard, navigate nor touch the session.
  const navigation = ++navigations;
  const isCurrent = () => navigation === navigations;
  const { parts, query } = parseHash();
  Object.assign(shown, { hash: window.location.hash, unsaved: () => false });
  document.querySelectorAll("dialog").forEach((dialog) => dialog.close());
  const page = h("div", { class: "page" });
  replaceChildren(view, page);
  if (!session.apiKey) {
    if (parts[0] !== "signin") {
      navigate("#/signin");
      return;
    }
    renderSignIn(page, {
      apiFor: (apiKey) => apiFor(apiKey),
      apiOrigin: apiOrigin(),
      message: state.signInMessage,
      onSignedIn(apiKey, workspaces) {
        if (!isCurrent()) return;
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
    const scope = await ensureScope(api, isCurrent);
    if (!isCurrent()) return;
    if (!scope?.environment) {
      replaceChildren(
        page,
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
      isCurrent,
      navigate: (hash) => isCurrent() && navigate(hash),
      reload: () => isCurrent() && route(),
      protect: (unsaved) => isCurrent() && (shown.unsaved = unsaved),
      replaceQuery: (values) => isCurrent() && replaceQuery(values),
      connections: new Connections(api, scope.workspace.workspaceId, scope.environment.environmentId),
      apiKeys: new ApiKeys(api, scope.workspace.workspaceId),
      workspace: scope.workspace,
      environments: state.environments.items,
      providers: () =>
        (state.providers ??= api.providers().catch((error) => {
          state.providers = null;
          throw error;
        })),
    };
    const [section, id, action] = parts;
    if (section === "api-keys" && !id) await renderApiKeys(page, ctx);
    else if (section !== "connections") renderNotFound(page);
    else if (!id) await renderConnectionList(page, ctx);
    else if (id === "new") await renderCreateConnection(page, ctx);
    else if (id === "quick-add") await renderQuickAdd(page, ctx);
    else if (!action) await renderConnectionPage(page, ctx, id);
    else if (action === "edit") await renderEditConnection(page, ctx, id);
    else renderNotFound(page);
  } catch (error) {
    if (error.status === 401 || !isCurrent()) return;
    replaceChildren(
      page,
      h(
        "div",
        { class: "form-errors", role: "alert" },
        h("p", { class: "error-message" }, error.message),
        h("p", {}, h("a", { href: "#/connections" }, "Back to AI connections")),
      ),
    );
  }
}

function renderNotFound(page) {
  replaceChildren(
    page,
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
