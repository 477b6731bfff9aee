// What the console remembers, in this tab's session storage only: closing the tab forgets the key.

const KEYS = { apiKey: "vmx.apiKey", workspaceId: "vmx.workspaceId", environmentId: "vmx.environmentId" };

export const session = {
  get apiKey() {
    return sessionStorage.getItem(KEYS.apiKey);
  },
  get workspaceId() {
    return sessionStorage.getItem(KEYS.workspaceId);
  },
  get environmentId() {
    return sessionStorage.getItem(KEYS.environmentId);
  },
  signIn(apiKey) {
    sessionStorage.setItem(KEYS.apiKey, apiKey);
  },
  choose(workspaceId, environmentId) {
    sessionStorage.setItem(KEYS.workspaceId, workspaceId);
    if (environmentId) sessionStorage.setItem(KEYS.environmentId, environmentId);
    else sessionStorage.removeItem(KEYS.environmentId);
  },
  signOut() {
    for (const key of Object.values(KEYS)) sessionStorage.removeItem(key);
  },
};
