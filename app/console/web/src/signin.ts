// Sign-in: paste a token (JWT). It is kept in sessionStorage (this tab only); the node
// checks it on the first call, and any 401 later brings the page back here with a message.

import { h } from "./dom";
import { t } from "./i18n";
import { decodeClaims } from "./jwt";

export function signinView(message: string, onToken: (token: string) => void, onLang: () => void): HTMLElement {
  const token = h("textarea", {
    id: "signin-token",
    "data-testid": "signin-token",
    rows: 6,
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "signin-hint",
    required: true,
  });
  const error = h("p", { class: "error", role: "alert", "data-testid": "signin-error", hidden: !message }, message);
  const form = h(
    "form",
    { class: "signin panel", "aria-labelledby": "signin-h" },
    h("h1", { id: "signin-h" }, t("signinTitle")),
    h("label", { for: "signin-token" }, t("signinToken")),
    token,
    h("p", { id: "signin-hint", class: "muted" }, t("signinHint")),
    error,
    h("button", { type: "submit", class: "btn primary", "data-testid": "signin-submit" }, t("signinSubmit")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = token.value.trim().replace(/^Bearer\s+/i, "");
    const fail = (m: string) => {
      error.textContent = m;
      error.hidden = false;
      token.focus();
    };
    if (!v) return fail(t("signinEmpty"));
    if (!decodeClaims(v)) return fail(t("signinMalformed"));
    onToken(v);
  });
  const lang = h("button", { type: "button", class: "btn ghost", "data-testid": "lang-toggle" }, t("langOther"));
  lang.addEventListener("click", onLang);
  return barePage(form, h("div", { class: "tools" }, lang));
}

// The page without the console's shell: the brand bar (and `tools`), then `content`.
function barePage(content: HTMLElement, tools?: HTMLElement): HTMLElement {
  return h(
    "div",
    { class: "signin-page" },
    h(
      "header",
      { class: "topbar" },
      h(
        "div",
        { class: "brand" },
        h("span", { class: "brand-mark", "aria-hidden": "true" }, "◎"),
        h("span", { class: "brand-title" }, t("appTitle")),
        h("span", { class: "brand-sub" }, t("appSub")),
      ),
      tools ?? null,
    ),
    h("main", { id: "main", class: "signin-wrap" }, content),
  );
}

// A full page in place of the console when it cannot be shown: the node is unreachable
// (the token is kept; retry) or the token's role has no use for it (a department).
export function noticeView(testid: string, title: string, lines: string[], buttons: HTMLElement[]): HTMLElement {
  return barePage(
    h(
      "section",
      { class: "signin panel", "data-testid": testid, "aria-labelledby": `${testid}-h` },
      h("h1", { id: `${testid}-h` }, title),
      lines.map((l, i) => h("p", { class: i === 0 ? null : "muted" }, l)),
      h("div", { class: "row" }, buttons),
    ),
  );
}
