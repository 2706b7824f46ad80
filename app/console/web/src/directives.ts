// Directives (指令): issue one to a subtree (every unit of a level), list them, and watch
// one's progress per child jurisdiction fill live — signed (签收) and done (反馈) out of
// the targets — from DirectiveService.Progress, re-read when the watch stream reports a
// change of that directive; and page through the units that have not signed
// (ListTargets, state PENDING).

import {
  Change,
  Directive,
  DirectiveView,
  GetProgressResponse,
  IssueDirectiveResponse,
  ListDirectivesResponse,
  ListTargetsResponse,
  ProgressRow,
  num,
  rpc,
} from "./api";
import { Coalescer, Ctx, View, canAct, errorBox, errorText } from "./context";
import { h, setChildren, setText } from "./dom";
import { LEVELS, levelEvery, levelLabel, receiptLabel, t } from "./i18n";
import { fmtInt, fmtShort, fmtTime, fromCstInput, jurisdictionView, knownJurisdiction, lineage, nameOf, toCstInput } from "./store";

function randomId(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// A bar with two layers: signed (lighter) and done (solid), out of total.
export function progressBar(counts: { total?: string; signed?: string; done?: string } | undefined, label: string): HTMLElement {
  const total = num(counts?.total);
  const signed = num(counts?.signed);
  const done = num(counts?.done);
  const signedFill = h("span", { class: "bar-signed" });
  const doneFill = h("span", { class: "bar-done" });
  signedFill.style.width = total ? `${(100 * signed) / total}%` : "0";
  doneFill.style.width = total ? `${(100 * done) / total}%` : "0";
  return h(
    "div",
    {
      class: "bar",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": 0,
      "aria-valuemax": total,
      "aria-valuenow": done,
      "aria-valuetext": `${t("signed")} ${signed}/${total}, ${t("done")} ${done}/${total}`,
    },
    signedFill,
    doneFill,
  );
}

// A message carried over to the view the page opens after an issue.
let flash = "";

export function directivesView(ctx: Ctx, selectedId: string): View {
  const PAGE = 50;
  const listStatus = h("div", { class: "status-slot" });
  const list = h("ul", { class: "dlist", "data-testid": "directive-list" });
  const more = h("button", { type: "button", class: "btn", hidden: true, "data-testid": "directive-more" }, t("nextPage"));
  let listNext = "";
  const detail = h("section", { class: "panel ddetail", "aria-label": t("progress") });

  // ---- the issue form ----
  const newBtn = h("button", { type: "button", class: "btn primary", "data-testid": "directive-new", "aria-expanded": "false" }, t("directiveNew"));
  const title = h("input", { id: "directive-title", type: "text", maxlength: 200, "data-testid": "directive-title" });
  const text = h("textarea", { id: "directive-text", rows: 3, maxlength: 4000, required: true, "data-testid": "directive-text" });
  const subtree = h("select", { id: "directive-subtree", "data-testid": "directive-subtree" });
  const level = h("select", { id: "directive-level", "data-testid": "directive-level" });
  const deadline = h("input", { id: "directive-deadline", type: "datetime-local", required: true, "data-testid": "directive-deadline" });
  const formError = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "directive-error" });
  const formResult = h("p", { class: "ok", role: "status", "data-testid": "directive-result" }, flash);
  flash = "";
  const submit = h("button", { type: "submit", class: "btn primary", "data-testid": "directive-submit" }, t("directiveSubmit"));
  let requestId = randomId();
  const subtreeLevels = new Map<string, string>();
  const form = h(
    "form",
    { class: "dform", hidden: true, "data-testid": "directive-form" },
    h("label", { for: "directive-title" }, t("directiveTitle")),
    title,
    h("label", { for: "directive-text" }, t("directiveText")),
    text,
    h(
      "div",
      { class: "row" },
      h("div", { class: "field" }, h("label", { for: "directive-subtree" }, t("directiveSubtree")), subtree),
      h("div", { class: "field" }, h("label", { for: "directive-level" }, t("directiveLevel")), level),
      h("div", { class: "field" }, h("label", { for: "directive-deadline" }, t("directiveDeadline")), deadline),
    ),
    h("div", { class: "row" }, submit),
    formError,
  );

  function fillLevels(): void {
    const rootLevel = subtreeLevels.get(subtree.value) ?? "LEVEL_CITY";
    const below = LEVELS.slice(LEVELS.indexOf(rootLevel) + 1);
    const keep = level.value;
    setChildren(level, below.map((l) => h("option", { value: l }, levelEvery(l))));
    if (below.includes(keep)) level.value = keep;
  }
  subtree.addEventListener("change", fillLevels);

  void jurisdictionView(ctx.rootId)
    .then((v) => {
      const opts = [v.jurisdiction, ...(v.children ?? [])].filter((j): j is NonNullable<typeof j> => !!j);
      for (const j of opts) subtreeLevels.set(j.id, j.level ?? "");
      setChildren(
        subtree,
        opts.map((j) => h("option", { value: j.id }, `${j.name ?? j.id}（${levelLabel(j.level)}）`)),
      );
      fillLevels();
    })
    .catch(() => {});

  newBtn.addEventListener("click", () => {
    form.hidden = !form.hidden;
    newBtn.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) {
      if (!deadline.value) deadline.value = toCstInput(Date.now() + 24 * 3600_000);
      text.focus();
    }
  });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void issue();
  });

  async function issue(): Promise<void> {
    formError.hidden = true;
    setText(formError, "");
    setText(formResult, "");
    const body = text.value.trim();
    const ttl = title.value.trim() || body.split("\n")[0].slice(0, 60);
    const ms = fromCstInput(deadline.value);
    submit.disabled = true;
    try {
      const res = await rpc<IssueDirectiveResponse>("DirectiveService", "Issue", {
        draft: {
          title: ttl,
          text: body,
          deadlineUnixMs: Number.isFinite(ms) ? String(ms) : "0",
          targets: { level: { subtreeId: subtree.value, level: level.value } },
        },
        requestId,
      });
      requestId = randomId();
      title.value = "";
      text.value = "";
      form.hidden = true;
      newBtn.setAttribute("aria-expanded", "false");
      const msg = t("directiveIssued", { n: fmtInt(res.targets) });
      setText(formResult, msg);
      const id = res.directive?.id;
      if (id && id !== selectedId) {
        flash = msg;
        location.hash = `#/directives/${encodeURIComponent(id)}`;
      } else {
        void loadList(true);
      }
    } catch (e) {
      formError.hidden = false;
      setText(formError, `${t("nodeSays")}${errorText(e)}`);
    } finally {
      submit.disabled = false;
    }
  }

  // ---- the list ----
  function item(v: DirectiveView): HTMLElement {
    const d = v.directive!;
    const p = v.progress;
    return h(
      "li",
      { "data-testid": `directive-item-${d.id}`, class: d.id === selectedId ? "selected" : null },
      h(
        "a",
        { href: `#/directives/${encodeURIComponent(d.id)}`, "aria-current": d.id === selectedId ? "true" : null },
        h("span", { class: "dtitle" }, d.draft?.title ?? d.id),
        h(
          "span",
          { class: "dmeta" },
          `${nameOf(d.issuerJurisdictionId)} · ${t("deadline")} ${fmtShort(d.draft?.deadlineUnixMs)}`,
          d.state === "DIRECTIVE_STATE_CANCELLED" ? ` · ${t("cancelled")}` : "",
        ),
        progressBar(p?.counts, `${d.draft?.title ?? d.id} ${t("progress")}`),
        h("span", { class: "dnums" }, `${t("signed")} ${fmtInt(p?.counts?.signed)} · ${t("done")} ${fmtInt(p?.counts?.done)} / ${fmtInt(p?.counts?.total)}`),
      ),
    );
  }

  async function loadList(fresh: boolean): Promise<void> {
    try {
      const res = await rpc<ListDirectivesResponse>("DirectiveService", "List", {
        jurisdictionId: ctx.rootId,
        pageSize: PAGE,
        pageToken: fresh ? undefined : listNext || undefined,
      });
      const views = (res.directives ?? []).filter((v) => v.directive?.id);
      await Promise.all(views.map((v) => lineage(v.directive?.issuerJurisdictionId ?? "").catch(() => [])));
      const items = views.map(item);
      if (fresh) setChildren(list, items.length ? items : h("li", { class: "muted" }, t("noData")));
      else items.forEach((i) => list.appendChild(i));
      listNext = res.nextPageToken ?? "";
      more.hidden = !listNext;
      setChildren(listStatus);
    } catch (e) {
      setChildren(listStatus, errorBox(e));
    }
  }
  more.addEventListener("click", () => void loadList(false));

  // ---- the selected directive ----
  const progressBox = h("div", { "data-testid": selectedId ? `directive-progress-${selectedId}` : null, class: "progress-box" });
  const unsignedBox = h("div", { class: "unsigned" });
  const detailStatus = h("div", { class: "status-slot" });
  let unsignedTokens: string[] = [""];
  let unsignedPage = 0;

  function progressRow(d: string, r: ProgressRow, total: boolean): HTMLElement {
    const j = r.jurisdictionId ?? "";
    const c = r.counts;
    const name = r.name || nameOf(j) || j;
    return h(
      "tr",
      { class: total ? "total" : null, "data-testid": `progress-row-${d}-${j}` },
      h("th", { scope: "row" }, name, r.level ? h("span", { class: "lvl" }, levelLabel(r.level)) : null),
      h("td", { class: "barcell" }, progressBar(c, `${name} ${t("progress")}`)),
      h("td", { class: "num", "data-testid": `progress-${d}-${j}-signed` }, fmtInt(c?.signed)),
      h("td", { class: "num", "data-testid": `progress-${d}-${j}-done` }, fmtInt(c?.done)),
      h("td", { class: "num", "data-testid": `progress-${d}-${j}-total` }, fmtInt(c?.total)),
      h("td", { class: `num ${num(r.overdue) > 0 ? "hot" : ""}`, "data-testid": `progress-${d}-${j}-overdue` }, fmtInt(r.overdue)),
    );
  }

  function paintDirective(dir: Directive | undefined, p: GetProgressResponse): void {
    const d = dir ?? p.directive;
    const id = d?.id ?? selectedId;
    const rows = [...(p.children ?? [])];
    setChildren(
      progressBox,
      h(
        "div",
        { class: "dhead" },
        h("h2", null, d?.draft?.title ?? id),
        h(
          "p",
          { class: "dmeta" },
          `${t("issuer")}：${nameOf(d?.issuerJurisdictionId)}（${d?.issuerUser ?? ""}） · ${t("issuedAt")} ${fmtTime(d?.issuedAtUnixMs)} · ${t("deadline")} ${fmtTime(d?.draft?.deadlineUnixMs)} · `,
          h("span", { class: d?.state === "DIRECTIVE_STATE_CANCELLED" ? "badge" : "badge badge-ok" }, d?.state === "DIRECTIVE_STATE_CANCELLED" ? t("cancelled") : t("active")),
        ),
        d?.draft?.text ? h("p", { class: "dtext" }, d.draft.text) : null,
      ),
      h(
        "table",
        { class: "grid-table progress-table" },
        h("caption", { class: "sr-only" }, t("progress")),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, t("unit")),
            h("th", { scope: "col" }, t("progress")),
            h("th", { scope: "col", class: "num" }, t("signed")),
            h("th", { scope: "col", class: "num" }, t("done")),
            h("th", { scope: "col", class: "num" }, t("total")),
            h("th", { scope: "col", class: "num" }, t("overdueUnits")),
          ),
        ),
        h("tbody", null, p.total ? progressRow(id, p.total, true) : null, rows.map((r) => progressRow(id, r, false))),
      ),
    );
  }

  async function loadProgress(): Promise<void> {
    if (!selectedId) return;
    try {
      const p = await rpc<GetProgressResponse>("DirectiveService", "Progress", { directiveId: selectedId, jurisdictionId: ctx.rootId });
      const ids = [p.total?.jurisdictionId, ...(p.children ?? []).map((r) => r.jurisdictionId), p.directive?.issuerJurisdictionId];
      await Promise.all(ids.filter((x): x is string => !!x).map((x) => lineage(x).catch(() => [])));
      paintDirective(p.directive, p);
      setChildren(detailStatus);
    } catch (e) {
      setChildren(detailStatus, errorBox(e));
    }
  }

  // Where a unit sits: its ancestors below the signed-in root (a department: its jurisdiction too).
  function where(unit: string, jurisdiction: string): string {
    const names: string[] = [];
    let cur = knownJurisdiction(unit === jurisdiction ? knownJurisdiction(unit)?.parentId ?? "" : jurisdiction);
    while (cur && cur.id !== ctx.rootId) {
      names.unshift(cur.name ?? cur.id);
      cur = cur.parentId ? knownJurisdiction(cur.parentId) : undefined;
    }
    return names.join(" / ");
  }

  async function loadUnsigned(): Promise<void> {
    if (!selectedId) return;
    try {
      // Across nodes the answer comes in segments, one per child node: a page
      // may be empty yet go on (nextPageToken "1|"), so follow it until
      // something is found or the list ends.
      let res: ListTargetsResponse = {};
      let pageToken = unsignedTokens[unsignedPage] || undefined;
      for (let hop = 0; hop < 256; hop++) {
        res = await rpc<ListTargetsResponse>("DirectiveService", "ListTargets", {
          directiveId: selectedId,
          jurisdictionId: ctx.rootId,
          state: "RECEIPT_STATE_PENDING",
          pageSize: PAGE,
          pageToken,
        });
        if ((res.receipts ?? []).length > 0 || !res.nextPageToken) break;
        pageToken = res.nextPageToken;
      }
      const receipts = res.receipts ?? [];
      await Promise.all(
        [...new Set(receipts.map((r) => r.jurisdictionId).filter((x): x is string => !!x))].map((x) => lineage(x).catch(() => [])),
      );
      const prev = h("button", { type: "button", class: "btn", disabled: unsignedPage === 0 }, t("prevPage"));
      const next = h("button", { type: "button", class: "btn", disabled: !res.nextPageToken }, t("nextPage"));
      prev.addEventListener("click", () => {
        unsignedPage = Math.max(0, unsignedPage - 1);
        void loadUnsigned();
      });
      next.addEventListener("click", () => {
        unsignedTokens[unsignedPage + 1] = res.nextPageToken ?? "";
        unsignedPage++;
        void loadUnsigned();
      });
      setChildren(
        unsignedBox,
        h("h3", null, t("unsigned")),
        h(
          "div",
          { class: "scroll", tabindex: 0, role: "region", "aria-label": t("unsigned") },
          h(
          "table",
          { class: "grid-table compact", "data-testid": "unsigned-list" },
          h("caption", { class: "sr-only" }, t("unsigned")),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, t("unit")), h("th", { scope: "col" }, t("where")), h("th", { scope: "col" }, t("receiptState")))),
          h(
            "tbody",
            null,
            receipts.length === 0
              ? h("tr", null, h("td", { colspan: 3, class: "muted" }, t("noUnsigned")))
              : receipts.map((r) =>
                  h(
                    "tr",
                    { "data-testid": `unsigned-${r.unitId}` },
                    h("td", null, nameOf(r.unitId) || r.unitId || ""),
                    h("td", null, where(r.unitId ?? "", r.jurisdictionId ?? "")),
                    h("td", null, receiptLabel(r.state)),
                  ),
                ),
          ),
        ),
        ),
        h("div", { class: "row" }, prev, h("span", { class: "muted" }, t("page", { n: unsignedPage + 1 })), next),
      );
    } catch (e) {
      setChildren(unsignedBox, h("h3", null, t("unsigned")), errorBox(e));
    }
  }

  if (selectedId) {
    setChildren(detail, progressBox, detailStatus, unsignedBox);
    void loadProgress();
    void loadUnsigned();
  } else {
    setChildren(detail, h("p", { class: "muted" }, t("directiveList")));
  }

  const el = h(
    "div",
    { class: "view view-directives" },
    h("h1", { class: "sr-only" }, t("navDirectives")),
    h(
      "div",
      { class: "dir-layout" },
      h(
        "section",
        { class: "panel dside", "aria-labelledby": "dlist-h" },
        h("div", { class: "row spread" }, h("h2", { id: "dlist-h" }, t("directiveList")), canAct(ctx) ? newBtn : null),
        canAct(ctx) ? form : null,
        formResult,
        listStatus,
        list,
        more,
      ),
      detail,
    ),
  );

  void loadList(true);
  const progressReload = new Coalescer(150, loadProgress);
  const unsignedReload = new Coalescer(1000, loadUnsigned);
  const listReload = new Coalescer(1500, () => loadList(true));

  return {
    el,
    onChange(c: Change) {
      const dc = c.directiveChange;
      if (!dc) return;
      if (dc.directiveId === selectedId) {
        progressReload.kick();
        unsignedReload.kick();
      }
      listReload.kick();
    },
    onResync() {
      progressReload.kick();
      unsignedReload.kick();
      listReload.kick();
    },
    dispose() {
      progressReload.cancel();
      unsignedReload.cancel();
      listReload.cancel();
    },
  };
}
