// The REST API, as the console uses it. Every error becomes an ApiError carrying the API's own code,
// message and field details, so that views can show them where they belong.

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  /** `baseUrl` is the API's URL from config.json; empty when the API shares the console's origin. */
  constructor(baseUrl, apiKey, onUnauthorized = () => {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { body, query, ifMatch } = {}) {
    const url = new URL(this.baseUrl + path, window.location.href);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    // The key travels only in this header: never in a URL, so never in a history, a log or a Referer.
    const headers = { Authorization: `Bearer ${this.apiKey}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch) headers["If-Match"] = ifMatch;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (cause) {
      throw new ApiError(0, "network_error", `Could not reach the API at ${url.origin} (${cause.message}).`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = data?.error;
      const apiError = new ApiError(
        response.status,
        error?.code ?? "http_error",
        error?.message ?? `The API answered ${response.status} ${response.statusText}.`,
        Array.isArray(error?.details) ? error.details : [],
      );
      if (response.status === 401) this.onUnauthorized(apiError);
      throw apiError;
    }
    return { data, etag: response.headers.get("ETag") };
  }

  async get(path, query) {
    return (await this.request("GET", path, { query })).data;
  }

  /** Every page of a paginated list. */
  async all(path, query = {}, onPage = () => {}) {
    const items = [];
    let nextToken;
    do {
      const page = await this.get(path, { ...query, limit: 100, nextToken });
      items.push(...page.items);
      onPage(items.length);
      nextToken = page.nextToken;
    } while (nextToken);
    return items;
  }

  workspaces() {
    return this.all("/api/v1/workspaces");
  }

  environments(workspaceId) {
    return this.all(`/api/v1/workspaces/${encodeURIComponent(workspaceId)}/environments`);
  }

  async providers() {
    return (await this.get("/api/v1/providers")).items;
  }
}

/** The connection routes of one workspace environment. */
export class Connections {
  constructor(api, workspaceId, environmentId) {
    this.api = api;
    this.base =
      `/api/v1/workspaces/${encodeURIComponent(workspaceId)}` +
      `/environments/${encodeURIComponent(environmentId)}/ai-connections`;
  }

  path(connectionId, suffix = "") {
    return `${this.base}/${encodeURIComponent(connectionId)}${suffix}`;
  }

  list(provider, onPage) {
    return this.api.all(this.base, { provider }, onPage);
  }

  /** { data: connection, etag } */
  get(connectionId) {
    return this.api.request("GET", this.path(connectionId));
  }

  create(body) {
    return this.api.request("POST", this.base, { body });
  }

  update(connectionId, body, etag) {
    return this.api.request("PATCH", this.path(connectionId), { body, ifMatch: etag });
  }

  remove(connectionId, etag) {
    return this.api.request("DELETE", this.path(connectionId), { ifMatch: etag });
  }

  /** Tests the stored connection; with `changes` (an update's body), as that update would leave it. */
  async test(connectionId, changes) {
    return (await this.api.request("POST", this.path(connectionId, "/test"), { body: changes })).data;
  }

  /** Tests a connection before it is created, from the body that would create it. */
  async testNew(body) {
    return (await this.api.request("POST", `${this.base}/test`, { body })).data;
  }

  capacity(connectionId) {
    return this.api.get(this.path(connectionId, "/capacity"));
  }

  usage(connectionId, from, to, granularity) {
    return this.api.get(this.path(connectionId, "/usage"), {
      from: from.toISOString(),
      to: to.toISOString(),
      granularity,
    });
  }
}

/** The API keys of one workspace. */
export class ApiKeys {
  constructor(api, workspaceId) {
    this.api = api;
    this.base = `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/api-keys`;
  }

  list() {
    return this.api.all(this.base);
  }

  /** The new key, with `apiKey`: the only answer that carries it. */
  async create(body) {
    return (await this.api.request("POST", this.base, { body })).data;
  }

  /** The key as it now is; `priorityClass` null for none. */
  async setPriorityClass(keyId, priorityClass) {
    const path = `${this.base}/${encodeURIComponent(keyId)}`;
    return (await this.api.request("PATCH", path, { body: { priorityClass } })).data;
  }

  revoke(keyId) {
    return this.api.request("DELETE", `${this.base}/${encodeURIComponent(keyId)}`);
  }
}
