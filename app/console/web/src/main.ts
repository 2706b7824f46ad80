// The console page: sign-in, then a shell (top bar with navigation, live status, mode and
// language toggles, sign-out) around one view chosen by the URL hash:
//   #/tree (default)  #/j/<jurisdiction>  #/case/<case>  #/directives[/<directive>]  #/assess
// One watch stream (the token's jurisdiction) feeds whichever view is shown.

import "./styles.css";
import { ApiError, JurisdictionView, getToken, rpc, setToken, setUnauthenticatedHandler } from "./api";
import { assessView } from "./assess";
import { caseDetailView } from "./casedetail";
import { caseListView } from "./cases";
import { Ctx, View, errorText } from "./context";
import { directivesView } from "./directives";
import { h, setChildren, setText } from "./dom";
import { getLang, roleLabel, setLang, t } from "./i18n";
import { decodeClaims } from "./jwt";
import { noticeView, signinView } from "./signin";
import { fmtTime, jurisdictionView, nameOf, refreshLinks } from "./store";
import { treeView } from "./tree";
import { Watch, WatchStatus } from "./watch";

const MODE_KEY = "whistle.console.mode";
const app = document.getElementById("app")!;

let ctx: Ctx | null = null;
let view: View | null = null;
let watch: Watch | null = null;
let watchStatus: WatchStatus = "offline";
let liveEl: HTMLElement | null = null;
let linksTimer: number | undefined;
let clockTimer: number | undefined;
let retryTimer: number | undefined;
const RETRY_S = 5;

function initialScreen(): boolean {
  const q = new URLSearchParams(location.search).get("mode");
  if (q === "screen" || q === "desk") {
    try {
      localStorage.setItem(MODE_KEY, q);
    } catch {
      /* ignore */
    }
    return q === "screen";
  }
  try {
    return localStorage.getItem(MODE_KEY) === "screen";
  } catch {
    return false;
  }
}

function setQuery(key: string, value: string): void {
  const u = new URL(location.href);
  u.searchParams.set(key, value);
  history.replaceState(null, "", u);
}

let screen = initialScreen();
setLang(getLang());

function applyMode(): void {
  document.body.classList.toggle("mode-screen", screen);
  document.body.classList.toggle("mode-desk", !screen);
}
applyMode();

// ---- sign-in and sign-out ----

function showSignin(message: string): void {
  stopSession();
  document.title = `${t("signinTitle")} · ${t("appTitle")}`;
  setChildren(
    app,
    signinView(
      message,
      (token) => void signIn(token),
      () => {
        setLang(getLang() === "zh" ? "en" : "zh");
        setQuery("lang", getLang());
        showSignin(message);
      },
    ),
  );
  document.getElementById("signin-token")?.focus();
}

function stopSession(): void {
  watch?.stop();
  watch = null;
  view?.dispose?.();
  view = null;
  ctx = null;
  if (linksTimer !== undefined) clearInterval(linksTimer);
  if (clockTimer !== undefined) clearInterval(clockTimer);
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  if (retryTimer !== undefined) clearTimeout(retryTimer);
  linksTimer = clockTimer = expiryTimer = retryTimer = undefined;
}

async function signIn(token: string): Promise<void> {
  setToken(token);
  await start();
}

setUnauthenticatedHandler((message) => {
  if (!getToken()) return;
  setToken(null);
  const why = message ? (getLang() === "zh" ? `（${message}）` : ` (${message})`) : "";
  showSignin(`${t("sessionExpired")}${why}`);
});

async function start(): Promise<void> {
  const token = getToken();
  const claims = token ? decodeClaims(token) : null;
  if (!token || !claims) {
    setToken(null);
    showSignin("");
    return;
  }
  if (claims.role === "department") {
    showDepartment();
    return;
  }
  // The first call checks the token with the node (a 401 comes back to sign-in).
  let rootView: JurisdictionView;
  try {
    rootView = await jurisdictionView(claims.jurisdiction ?? "");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return; // handled: back to sign-in
    if (getToken() !== token) return; // signed out or in again meanwhile
    // No answer (the gateway or its node is down, 5xx, 429): keep the token and retry.
    // Any other refusal (400, 403, 404: e.g. a jurisdiction this node does not know)
    // would only repeat itself: show it, with a retry button and sign-out.
    const down = !(e instanceof ApiError) || e.status === 0 || e.status === 429 || e.status >= 500;
    showUnreachable(errorText(e), down);
    return;
  }
  if (getToken() !== token) return;
  stopSession();
  ctx = { claims, rootId: rootView.jurisdiction?.id ?? claims.jurisdiction ?? "", screen };
  watch = new Watch(ctx.rootId, {
    onChange: (c) => view?.onChange?.(c),
    onStatus: (s) => {
      watchStatus = s;
      paintLive();
    },
    onResync: () => view?.onResync?.(),
  });
  renderShell();
  watch.start();
  armExpiry(claims.exp);
  void refreshLinks();
  linksTimer = window.setInterval(() => void refreshLinks(), 5000);
}

function signoutButton(): HTMLElement {
  const b = h("button", { type: "button", class: "btn ghost", "data-testid": "signout" }, t("signout"));
  b.addEventListener("click", () => {
    setToken(null);
    showSignin("");
  });
  return b;
}

// The node could not be reached (the gateway is down, or answers 5xx): the token is kept;
// the page asks again every RETRY_S seconds and on the retry button. Only a 401 signs out.
function showUnreachable(message: string, down: boolean): void {
  stopSession();
  const title = down ? t("nodeUnreachable") : t("nodeRefused");
  document.title = `${title} · ${t("appTitle")}`;
  const retry = h("button", { type: "button", class: "btn primary", "data-testid": "node-retry" }, t("retryNow"));
  retry.addEventListener("click", () => {
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    retryTimer = undefined;
    retry.disabled = true;
    setText(retry, t("retrying"));
    void start();
  });
  setChildren(
    app,
    noticeView(
      down ? "node-unreachable" : "node-refused",
      down ? `${t("nodeUnreachable")} / ${getLang() === "zh" ? "node unreachable" : "节点不可达"}` : title,
      [`${t("nodeSays")}${message}`, down ? t("nodeUnreachableHint", { s: RETRY_S }) : ""].filter(Boolean),
      [retry, signoutButton()],
    ),
  );
  if (!down) return;
  retryTimer = window.setTimeout(() => {
    retryTimer = undefined;
    void start();
  }, RETRY_S * 1000);
}

// A department token has no jurisdiction to show: it works from its inbox.
function showDepartment(): void {
  stopSession();
  document.title = t("appTitle");
  setChildren(app, noticeView("department-notice", t("deptTitle"), [t("deptText")], [signoutButton()]));
}

// When the token's exp (plus the node's leeway) passes, ask the node once (a 401 brings sign-in with the expiry
// message); if the node still accepts it (clocks differ), ask again a little later.
let expiryTimer: number | undefined;
function armExpiry(exp: number | undefined, delayMs?: number): void {
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  expiryTimer = undefined;
  if (!exp) return;
  // The node allows 60 s of clock skew past exp (services/token.h).
  const wait = delayMs ?? Math.max(0, exp * 1000 - Date.now()) + 61_000;
  if (wait > 2_000_000_000) return;
  expiryTimer = window.setTimeout(() => {
    if (!ctx) return;
    rpc("TopologyService", "GetJurisdiction", { id: ctx.rootId }).then(
      () => armExpiry(exp, 15000),
      () => armExpiry(exp, 15000),
    );
  }, wait);
}

// ---- the shell ----

const clock = h("span", { class: "clock mono", "aria-hidden": "true" });
function tick(): void {
  setText(clock, fmtTime(Date.now()));
}

function paintLive(): void {
  if (!liveEl) return;
  const label =
    watchStatus === "live"
      ? t("live")
      : watchStatus === "connecting"
        ? t("connecting")
        : watchStatus === "reconnecting"
          ? t("reconnecting")
          : t("offline");
  setText(liveEl, label);
  liveEl.className = `live live-${watchStatus}`;
}

function navLink(route: string, testid: string, label: string): HTMLElement {
  return h("li", null, h("a", { href: `#/${route}`, "data-testid": testid, "data-route": route }, label));
}

function renderShell(): void {
  if (!ctx) return;
  const c = ctx;
  liveEl = h("span", { "data-testid": "live-status", role: "status", class: "live" });
  const modeBtn = h(
    "button",
    { type: "button", class: "btn ghost", "data-testid": "mode-toggle", "aria-pressed": String(screen) },
    screen ? t("modeDesk") : t("modeScreen"),
  );
  const langBtn = h(
    "button",
    { type: "button", class: "btn ghost", "data-testid": "lang-toggle", lang: getLang() === "zh" ? "en" : "zh-CN" },
    t("langOther"),
  );
  const outBtn = h("button", { type: "button", class: "btn ghost", "data-testid": "signout" }, t("signout"));
  modeBtn.addEventListener("click", () => {
    screen = !screen;
    try {
      localStorage.setItem(MODE_KEY, screen ? "screen" : "desk");
    } catch {
      /* ignore */
    }
    setQuery("mode", screen ? "screen" : "desk");
    applyMode();
    if (ctx) ctx.screen = screen;
    renderShell();
  });
  langBtn.addEventListener("click", () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    setQuery("lang", getLang());
    renderShell();
  });
  outBtn.addEventListener("click", () => {
    setToken(null);
    showSignin("");
  });
  const who = [c.claims.sub, roleLabel(c.claims.role), nameOf(c.rootId)].filter(Boolean).join(" · ");
  const main = h("main", { id: "main", class: "content" });
  const header = h(
    "header",
    { class: "topbar" },
    h(
      "div",
      { class: "brand" },
      h("span", { class: "brand-mark", "aria-hidden": "true" }, "◎"),
      h("span", { class: "brand-title" }, `${nameOf(c.rootId)}${getLang() === "zh" ? "" : " "}${t("appTitle")}`),
      h("span", { class: "brand-sub" }, t("appSub")),
    ),
    h(
      "nav",
      { class: "mainnav", "aria-label": t("appTitle") },
      h(
        "ul",
        null,
        navLink("tree", "nav-tree", t("navTree")),
        navLink("directives", "nav-directives", t("navDirectives")),
        navLink("assess", "nav-assess", t("navAssess")),
      ),
    ),
    h(
      "div",
      { class: "tools" },
      liveEl,
      clock,
      h("span", { class: "who", "data-testid": "who" }, who),
      modeBtn,
      langBtn,
      outBtn,
    ),
  );
  setChildren(app, header, main);
  tick();
  if (clockTimer === undefined) clockTimer = window.setInterval(tick, 1000);
  paintLive();
  route();
}

// ---- routing ----

function route(): void {
  const main = document.getElementById("main");
  if (!ctx || !main) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [name, arg] = [parts[0] || "tree", parts[1] ?? ""];
  view?.dispose?.();
  let v: View;
  let nav = "tree";
  if (name === "j" && arg) v = caseListView(ctx, arg);
  else if (name === "case" && arg) v = caseDetailView(ctx, arg);
  else if (name === "directives") {
    v = directivesView(ctx, arg);
    nav = "directives";
  } else if (name === "assess") {
    v = assessView(ctx);
    nav = "assess";
  } else v = treeView(ctx);
  view = v;
  setChildren(main, v.el);
  for (const a of document.querySelectorAll<HTMLAnchorElement>(".mainnav a")) {
    if (a.dataset.route === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const title = { tree: t("navTree"), directives: t("navDirectives"), assess: t("navAssess") }[nav] ?? "";
  document.title = `${title} · ${nameOf(ctx.rootId)}${t("appTitle")}`;
}

window.addEventListener("hashchange", route);

void start();
