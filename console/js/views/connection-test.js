// Testing a connection: a Test button, and its result (what was called, what came of it) in a live region,
// so that a screen reader announces it. The API answers every outcome with 200; refusals are ApiErrors.

import { h, humanize, replaceChildren, whileBusy } from "../dom.js";

const OUTCOMES = {
  ok: "Test passed",
  credentials_refused: "Credentials refused",
  access_denied: "Access denied",
  role_not_assumable: "IAM role cannot be assumed",
  not_available: "Model not available",
  rate_limited: "Rate-limited by the provider",
  unreachable: "Provider unreachable",
  timed_out: "Timed out",
  misconfigured: "Configuration problem",
  provider_error: "Provider error",
};

export function testResult(tested) {
  return h(
    "div",
    { class: `test-result ${tested.ok ? "ok" : "failed"}` },
    h("p", { class: "test-outcome" }, OUTCOMES[tested.outcome] ?? humanize(tested.outcome)),
    h("p", {}, tested.message),
    h("p", { class: "help" }, `Checked: ${tested.checked} (${tested.durationMs} ms).`),
  );
}

/** Where a test's result shows. */
export function testOutput() {
  return h("div", { class: "test-output", role: "status", "aria-live": "polite" });
}

/** A Test button: `run` makes the API call and answers the test; `refused` shows an ApiError (by default in
 * the output). */
export function testButton(output, run, refused = (error) => showRefusal(output, error)) {
  const button = h("button", { type: "button", class: "secondary" }, "Test");
  button.addEventListener("click", () =>
    whileBusy(button, "Testing…", async () => {
      replaceChildren(output);
      try {
        const tested = await run();
        if (tested) replaceChildren(output, testResult(tested));
      } catch (error) {
        refused(error);
      }
    }),
  );
  return button;
}

/** The Test button of a form: `read` gives the body the form would save (undefined, with its problem shown,
 * when it cannot), `test` sends it; the API's refusals show beside their fields. */
export function formTestButton(output, errors, read, test) {
  return testButton(
    output,
    async () => {
      errors.clear();
      const body = read();
      return body && (await test(body));
    },
    (error) => errors.show(error),
  );
}

function showRefusal(output, error) {
  replaceChildren(output, h("div", { class: "test-result failed" }, h("p", { class: "error-message" }, error.message)));
}
