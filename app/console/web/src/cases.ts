// A jurisdiction's cases (CaseService.List over its subtree, paged, filtered by state),
// kept current from the watch stream: a change to a listed case updates its state at
// once, and any change in the subtree re-reads the page (coalesced).

import { Case, Change, ListCasesResponse, rpc } from "./api";
import { Coalescer, Ctx, View, errorBox } from "./context";
import { h, setChildren, setText } from "./dom";
import { ALL_STATES, categoryLabel, levelLabel, severityLabel, stateLabel, stateShort, t } from "./i18n";
import { fmtShort, jurisdictionView, lineage, nameOf } from "./store";

export function caseListView(_ctx: Ctx, jurisdictionId: string): View {
  const PAGE = 50;
  let tokens: string[] = [""]; // page tokens: tokens[i] reads page i
  let page = 0;
  let next = "";
  let state = "";
  const stateCells = new Map<string, HTMLElement>();

  const title = h("h1", null, nameOf(jurisdictionId) || jurisdictionId);
  const crumbs = h("nav", { class: "crumbs", "aria-label": t("jurisdiction") });
  const filter = h(
    "select",
    { id: "case-state-filter", "data-testid": "case-filter" },
    h("option", { value: "" }, t("allStates")),
    ALL_STATES.map((s) => h("option", { value: s }, stateLabel(s))),
  );
  const prev = h("button", { type: "button", class: "btn", "data-testid": "case-prev" }, t("prevPage"));
  const nextBtn = h("button", { type: "button", class: "btn", "data-testid": "case-next" }, t("nextPage"));
  const pageLabel = h("span", { class: "muted", "aria-live": "polite" });
  const status = h("div", { class: "status-slot" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "grid-table", "data-testid": "case-list" },
    h("caption", { class: "sr-only" }, t("cases")),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        [t("caseId"), t("category"), t("severity"), t("state"), t("owner"), t("place"), t("reportedAt"), t("nextDeadline")].map(
          (c) => h("th", { scope: "col" }, c),
        ),
      ),
    ),
    tbody,
  );

  const el = h(
    "div",
    { class: "view view-cases" },
    h("div", { class: "view-head" }, h("div", null, crumbs, title)),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "case-state-filter" }, t("filterState")),
      filter,
      h("span", { class: "spacer" }),
      prev,
      pageLabel,
      nextBtn,
    ),
    status,
    h("section", { class: "panel" }, table),
  );

  function row(c: Case): HTMLTableRowElement {
    const st = h(
      "span",
      { class: `state state-${stateShort(c.state ?? "")}`, "data-testid": `case-state-${c.id}` },
      stateLabel(c.state),
    );
    stateCells.set(c.id, st);
    return h(
      "tr",
      { "data-testid": `case-row-${c.id}`, class: c.overdueNow ? "overdue" : null },
      h("td", null, h("a", { href: `#/case/${encodeURIComponent(c.id)}`, class: "mono" }, c.id)),
      h("td", null, categoryLabel(c.category)),
      h("td", null, severityLabel(c.severity)),
      h("td", null, st, c.overdueNow ? h("span", { class: "badge badge-hot" }, t("overdue")) : null),
      h("td", null, nameOf(c.ownerId) || c.ownerId),
      h("td", { class: "clip" }, c.place?.address || c.place?.gridId || ""),
      h("td", { class: "mono" }, fmtShort(c.createdAtMs)),
      h("td", { class: "mono" }, fmtShort(c.nextDeadlineMs)),
    );
  }

  async function load(): Promise<void> {
    try {
      const res = await rpc<ListCasesResponse>("CaseService", "List", {
        jurisdictionId,
        state: state || undefined,
        pageSize: PAGE,
        pageToken: tokens[page] || undefined,
      });
      const cases = res.cases ?? [];
      // Owners' names for the owner column.
      await Promise.all(
        [...new Set(cases.map((c) => c.ownerId).filter((x): x is string => !!x))].map((id) =>
          lineage(id).catch(() => []),
        ),
      );
      stateCells.clear();
      setChildren(
        tbody,
        cases.length ? cases.map(row) : h("tr", null, h("td", { colspan: 8, class: "muted" }, t("noData"))),
      );
      next = res.nextPageToken ?? "";
      prev.disabled = page === 0;
      nextBtn.disabled = !next;
      setText(pageLabel, t("page", { n: page + 1 }));
      setChildren(status);
    } catch (e) {
      setChildren(status, errorBox(e));
    }
  }

  filter.addEventListener("change", () => {
    state = filter.value;
    tokens = [""];
    page = 0;
    void load();
  });
  prev.addEventListener("click", () => {
    if (page > 0) page--;
    void load();
  });
  nextBtn.addEventListener("click", () => {
    if (!next) return;
    tokens[page + 1] = next;
    page++;
    void load();
  });

  void jurisdictionView(jurisdictionId)
    .then((v) => {
      setText(title, v.jurisdiction?.name ?? jurisdictionId);
      const path = [...(v.path ?? []), ...(v.jurisdiction ? [v.jurisdiction] : [])];
      setChildren(
        crumbs,
        h("a", { href: "#/tree" }, t("navTree")),
        path.map((p) => [" / ", h("a", { href: `#/j/${encodeURIComponent(p.id)}` }, p.name ?? p.id)]),
        v.jurisdiction ? h("span", { class: "lvl" }, levelLabel(v.jurisdiction.level)) : null,
      );
    })
    .catch((e) => setChildren(status, errorBox(e)));
  void load();

  const reload = new Coalescer(300, load);

  return {
    el,
    onChange(c: Change) {
      const cc = c.caseChange;
      if (!cc) return;
      const cell = cc.caseId ? stateCells.get(cc.caseId) : undefined;
      if (cell && cc.state) {
        setText(cell, stateLabel(cc.state));
        cell.className = `state state-${stateShort(cc.state)}`;
      }
      const ids = c.jurisdictionIds ?? [cc.ownerId ?? ""];
      void Promise.all(ids.map((id) => lineage(id))).then((chains) => {
        if (chains.some((ch) => ch.includes(jurisdictionId))) reload.kick();
      });
    },
    onResync: () => reload.kick(),
    dispose: () => reload.cancel(),
  };
}
