// The live tree (default view): from the token's jurisdiction down to communities, each
// row with open cases by state (CaseService.Count), overdue now and today's no-shows
// (AssessmentService.Assess, PERIOD_DAY), and a badge when the node hosting the branch is
// unreachable. Changes from the watch stream mark the rows of the jurisdictions they
// concern (and their ancestors) dirty; dirty rows are re-fetched, coalesced.

import {
  AssessResponse,
  Change,
  CountCasesResponse,
  Jurisdiction,
  RankResponse,
  num,
  rpc,
} from "./api";
import { BarPanel, STATE_COLORS } from "./charts";
import { Coalescer, Ctx, View, errorText } from "./context";
import { h, setChildren, setText } from "./dom";
import { OPEN_STATES, levelLabel, stateLabel, stateShort, t } from "./i18n";
import {
  fmtInt,
  fmtPct,
  jurisdictionView,
  lineage,
  onLinks,
  unreachableIn,
} from "./store";

interface Row {
  j: Jurisdiction;
  depth: number;
  chain: string[]; // root first, ending with j.id
  parent: Row | null;
  children: Row[] | null; // null = not loaded
  expanded: boolean;
  tr: HTMLTableRowElement;
  cells: Map<string, HTMLTableCellElement>;
  twisty: HTMLButtonElement | null;
  status: HTMLTableCellElement;
  counts: Map<string, number> | null;
  assess: AssessResponse | null;
  loadError: string;
}

const LEAF_LEVELS = new Set(["LEVEL_COMMUNITY", "LEVEL_GRID"]);

export function treeView(ctx: Ctx): View {
  const rows = new Map<string, Row>();
  // Rows to re-read, and whether their Assess figures may have moved too (below).
  const dirty = new Map<string, boolean>();
  const disposers: (() => void)[] = [];

  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "tree", "data-testid": "tree" },
    h("caption", { class: "sr-only" }, t("treeCaption")),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "col", class: "name" }, t("jurisdiction")),
        OPEN_STATES.map((s) =>
          h(
            "th",
            { scope: "col", class: "num" },
            h("span", { class: "hcol" }, h("span", { class: `dot dot-${stateShort(s)}`, "aria-hidden": "true" }), stateLabel(s)),
          ),
        ),
        h("th", { scope: "col", class: "num strong" }, t("open")),
        h("th", { scope: "col", class: "num" }, t("overdueNow")),
        h("th", { scope: "col", class: "num" }, t("noShows")),
        h("th", { scope: "col", class: "st" }, t("status")),
      ),
    ),
    tbody,
  );

  const kpis = h("div", { class: "kpis", "data-testid": "kpis" });
  const openChartEl = h("div", { class: "chart", role: "img", "aria-label": t("openByChild") });
  const rankChartEl = h("div", { class: "chart", role: "img", "aria-label": t("rankTitle") });
  const openChart = new BarPanel(openChartEl);
  const rankChart = new BarPanel(rankChartEl);
  const side = h(
    "aside",
    { class: "side", "aria-label": t("openByChild") },
    h("section", { class: "panel" }, h("h2", null, t("openByChild")), openChartEl),
    h("section", { class: "panel" }, h("h2", null, t("rankTitle")), rankChartEl),
  );
  const banner = h("div", { class: "banner-slot" });
  const el = h(
    "div",
    { class: "view view-tree" },
    h("h1", { class: "sr-only" }, t("navTree")),
    kpis,
    banner,
    h("div", { class: "tree-layout" }, h("section", { class: "panel tree-panel" }, table), side),
  );

  // ---- rows ----

  function makeRow(j: Jurisdiction, parent: Row | null): Row {
    const id = j.id;
    const depth = parent ? parent.depth + 1 : 0;
    const expandable = !LEAF_LEVELS.has(j.level ?? "");
    const twisty = expandable
      ? h(
          "button",
          {
            type: "button",
            class: "twisty",
            "aria-expanded": "false",
            "aria-label": `${t("expand")} ${j.name ?? id}`,
            "data-testid": `tree-toggle-${id}`,
          },
          "▸",
        )
      : null;
    const cells = new Map<string, HTMLTableCellElement>();
    const numCell = (key: string, testid: string, cls = "num") => {
      const td = h("td", { class: cls, "data-testid": testid }, "…");
      cells.set(key, td);
      return td;
    };
    const status = h("td", { class: "st" });
    const tr = h(
      "tr",
      { "data-testid": `tree-row-${id}`, class: `lvl-${depth}` },
      h(
        "th",
        { scope: "row", class: "name" },
        h(
          "span",
          { class: "indent" },
          twisty ?? h("span", { class: "twisty-spacer", "aria-hidden": "true" }),
          h("a", { href: `#/j/${encodeURIComponent(id)}`, class: "jname" }, j.name ?? id),
          h("span", { class: "lvl" }, levelLabel(j.level)),
        ),
      ),
      OPEN_STATES.map((s) => numCell(s, `count-${id}-${stateShort(s)}`)),
      numCell("open", `count-${id}-open`, "num strong"),
      numCell("overdue", `overdue-${id}`, "num warn"),
      numCell("noshow", `noshow-${id}`, "num warn"),
      status,
    );
    tr.style.setProperty("--depth", String(depth));
    const row: Row = {
      j,
      depth,
      chain: parent ? [...parent.chain, id] : [id],
      parent,
      children: null,
      expanded: false,
      tr,
      cells,
      twisty,
      status,
      counts: null,
      assess: null,
      loadError: "",
    };
    twisty?.addEventListener("click", () => void toggle(row));
    rows.set(id, row);
    return row;
  }

  async function loadChildren(row: Row): Promise<Row[]> {
    if (row.children) return row.children;
    const v = await jurisdictionView(row.j.id);
    row.children = (v.children ?? []).filter((c) => c.level !== "LEVEL_GRID").map((c) => makeRow(c, row));
    return row.children;
  }

  function descendantsShown(row: Row): Row[] {
    const out: Row[] = [];
    if (!row.expanded || !row.children) return out;
    for (const c of row.children) {
      out.push(c, ...descendantsShown(c));
    }
    return out;
  }

  const busy = new Set<Row>();
  async function toggle(row: Row): Promise<void> {
    if (busy.has(row)) return; // a click while its children are still loading
    busy.add(row);
    try {
      await toggleNow(row);
    } finally {
      busy.delete(row);
    }
  }

  async function toggleNow(row: Row): Promise<void> {
    if (row.expanded) {
      for (const d of descendantsShown(row)) d.tr.remove();
      row.expanded = false;
    } else {
      const kids = await loadChildren(row);
      row.expanded = true;
      let after: Element = row.tr;
      for (const c of kids) {
        after.after(c.tr);
        after = c.tr;
        for (const d of descendantsShown(c)) {
          after.after(d.tr);
          after = d.tr;
        }
      }
    }
    if (row.twisty) {
      row.twisty.setAttribute("aria-expanded", String(row.expanded));
      row.twisty.setAttribute("aria-label", `${row.expanded ? t("collapse") : t("expand")} ${row.j.name ?? row.j.id}`);
      row.twisty.textContent = row.expanded ? "▾" : "▸";
    }
    if (row.expanded) await refreshRows((row.children ?? []).filter((k) => !k.counts));
    drawCharts();
  }

  // ---- data ----

  async function fetchRow(row: Row, withAssess = true): Promise<void> {
    const id = row.j.id;
    const [count, assess] = await Promise.allSettled([
      rpc<CountCasesResponse>("CaseService", "Count", { jurisdictionId: id }),
      withAssess
        ? rpc<AssessResponse>("AssessmentService", "Assess", {
            jurisdictionId: id,
            period: { period: "PERIOD_DAY" },
          })
        : Promise.resolve(row.assess ?? {}),
    ]);
    if (count.status === "fulfilled") {
      const m = new Map<string, number>();
      for (const c of count.value.counts ?? []) if (c.state) m.set(c.state, num(c.count));
      row.counts = m;
      row.loadError = "";
    } else {
      row.loadError = errorText(count.reason);
    }
    if (assess.status === "fulfilled") row.assess = assess.value;
    paintRow(row);
  }

  function figure(a: AssessResponse | null, snake: string, camel: string): string | null {
    if (!a?.counts) return null;
    const v = a.counts[snake] ?? a.counts[camel];
    return v === undefined ? "0" : v;
  }

  function paintRow(row: Row): void {
    const c = row.counts;
    let open = 0;
    for (const s of OPEN_STATES) {
      const n = c?.get(s) ?? 0;
      open += n;
      const td = row.cells.get(s)!;
      setText(td, c ? fmtInt(n) : row.loadError ? "—" : "…");
      td.classList.toggle("zero", !!c && n === 0);
    }
    setText(row.cells.get("open")!, c ? fmtInt(open) : row.loadError ? "—" : "…");
    const overdue = figure(row.assess, "overdue_now", "overdueNow");
    const noshow = figure(row.assess, "no_shows", "noShows");
    const od = row.cells.get("overdue")!;
    const ns = row.cells.get("noshow")!;
    setText(od, overdue === null ? "—" : fmtInt(overdue));
    setText(ns, noshow === null ? "—" : fmtInt(noshow));
    od.classList.toggle("hot", num(overdue ?? 0) > 0);
    ns.classList.toggle("hot", num(noshow ?? 0) > 0);
    row.tr.title = row.loadError;
    paintStatus(row);
  }

  function paintStatus(row: Row): void {
    const down = unreachableIn(row.chain);
    row.tr.classList.toggle("unreachable", down);
    const has = row.status.firstChild !== null;
    if (down && !has) {
      setChildren(
        row.status,
        h(
          "span",
          { class: "badge badge-down", "data-testid": `unreachable-${row.j.id}`, title: t("unreachableTitle") },
          t("unreachable"),
        ),
      );
    } else if (!down && has) {
      setChildren(row.status);
    }
  }

  async function refreshRows(list: Row[], withAssess?: (r: Row) => boolean): Promise<void> {
    // A handful at a time: the browser keeps ~6 connections per host anyway.
    const queue = [...list];
    const workers = Array.from({ length: Math.min(6, queue.length) }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) await fetchRow(r, withAssess ? withAssess(r) : true);
    });
    await Promise.all(workers);
    paintKpis();
    drawCharts();
  }

  function shownRows(): Row[] {
    const root = rows.get(ctx.rootId);
    return root ? [root, ...descendantsShown(root)] : [];
  }

  // A row's Assess figures (overdue now, today's no-shows) move only with an OVERDUE
  // entry, or when a case of a row that has overdue cases moves on. The root's key
  // figures (today's reports and resolutions) move with every change: read at most once a
  // second, and once more after the last change, so a busy day does not ask ten times a second.
  let rootAssessAt = 0;
  let rootAssessLater: number | undefined;
  function rootAssessDue(): boolean {
    const wait = rootAssessAt + 1000 - Date.now();
    if (wait <= 0) {
      rootAssessAt = Date.now();
      return true;
    }
    if (rootAssessLater === undefined) {
      rootAssessLater = window.setTimeout(() => {
        rootAssessLater = undefined;
        markDirty([ctx.rootId], false);
      }, wait);
    }
    return false;
  }
  const flusher = new Coalescer(100, async () => {
    const batch = new Map(dirty);
    dirty.clear();
    const list = [...batch.keys()].map((id) => rows.get(id)).filter((r): r is Row => !!r && r.tr.isConnected);
    const assessToo = (r: Row) =>
      batch.get(r.j.id) === true ||
      (r.j.id === ctx.rootId ? rootAssessDue() : num(figure(r.assess, "overdue_now", "overdueNow") ?? 0) > 0);
    if (list.length) await refreshRows(list, assessToo);
  });
  function markDirty(chain: string[], assess: boolean): void {
    for (const x of chain) dirty.set(x, (dirty.get(x) ?? false) || assess);
    flusher.kick();
  }

  // ---- key figures and charts ----

  function paintKpis(): void {
    const root = rows.get(ctx.rootId);
    if (!root) return;
    let open = 0;
    for (const s of OPEN_STATES) open += root.counts?.get(s) ?? 0;
    const a = root.assess;
    const rate = (name: string) => a?.rates?.find((r) => r.name === name);
    const card = (testid: string, label: string, value: string, cls = "") =>
      h(
        "div",
        { class: `kpi ${cls}`, "data-testid": testid },
        h("span", { class: "kpi-label" }, label),
        h("span", { class: "kpi-value" }, value),
      );
    const r1 = rate("response_rate");
    const r2 = rate("resolution_rate");
    const r3 = rate("satisfaction_rate");
    setChildren(
      kpis,
      h("div", { class: "kpi kpi-title" }, h("span", { class: "kpi-label" }, levelLabel(root.j.level)), h("span", { class: "kpi-name" }, root.j.name ?? root.j.id)),
      card("kpi-open", t("open"), root.counts ? fmtInt(open) : "…"),
      card("kpi-overdue", t("overdueNow"), a ? fmtInt(figure(a, "overdue_now", "overdueNow") ?? 0) : "—", num(figure(a, "overdue_now", "overdueNow") ?? 0) > 0 ? "hot" : ""),
      card("kpi-noshow", t("noShows"), a ? fmtInt(figure(a, "no_shows", "noShows") ?? 0) : "—", num(figure(a, "no_shows", "noShows") ?? 0) > 0 ? "hot" : ""),
      card("kpi-received", t("todayReceived"), a ? fmtInt(figure(a, "received", "received") ?? 0) : "—"),
      card("kpi-resolved", t("todayResolved"), a ? fmtInt(figure(a, "resolved", "resolved") ?? 0) : "—"),
      card("kpi-response", t("responseRate"), fmtPct(r1?.value, r1?.defined)),
      card("kpi-resolution", t("resolutionRate"), fmtPct(r2?.value, r2?.defined)),
      card("kpi-satisfaction", t("satisfactionRate"), fmtPct(r3?.value, r3?.defined)),
    );
  }

  let chartTimer: number | undefined;
  function drawCharts(): void {
    if (chartTimer !== undefined) return;
    chartTimer = window.setTimeout(() => {
      chartTimer = undefined;
      const root = rows.get(ctx.rootId);
      const kids = root?.children ?? [];
      if (!root || kids.length === 0) {
        side.hidden = true;
        return;
      }
      side.hidden = false;
      openChart.set({
        categories: kids.map((k) => k.j.name ?? k.j.id),
        series: OPEN_STATES.map((s) => ({
          name: stateLabel(s),
          values: kids.map((k) => k.counts?.get(s) ?? 0),
          stack: "open",
          color: STATE_COLORS[s],
        })),
        horizontal: true,
        big: ctx.screen,
      });
    }, 100);
  }

  let rankAt = 0;
  async function drawRank(): Promise<void> {
    rankAt = Date.now();
    try {
      const r = await rpc<RankResponse>("AssessmentService", "Rank", {
        jurisdictionId: ctx.rootId,
        figure: "response_rate",
        period: { period: "PERIOD_DAY" },
      });
      const entries = r.entries ?? [];
      if (entries.length === 0) return;
      rankChart.set({
        categories: entries.map((e) => e.name || e.jurisdictionId || ""),
        series: [
          {
            name: t("responseRate"),
            values: entries.map((e) => (e.rate?.defined ? (e.rate.value ?? 0) : null)),
            color: "#37d4c4",
          },
        ],
        horizontal: true,
        percent: true,
        big: ctx.screen,
      });
    } catch {
      rankChartEl.closest("section")?.setAttribute("hidden", "");
    }
  }

  // ---- start ----

  async function start(): Promise<void> {
    const v = await jurisdictionView(ctx.rootId);
    const root = makeRow(v.jurisdiction ?? { id: ctx.rootId }, null);
    root.chain = await lineage(ctx.rootId);
    tbody.appendChild(root.tr);
    paintKpis();
    const rootFigures = refreshRows([root]);
    await toggle(root);
    if (v.jurisdiction?.level === "LEVEL_CITY") {
      await Promise.all((root.children ?? []).map((c) => toggle(c)));
    }
    await rootFigures;
    // Every row shown at start has been read once (tests wait for this).
    table.dataset.ready = "true";
    void drawRank();
  }

  start().catch((e) => {
    setChildren(banner, h("p", { class: "error", role: "alert" }, `${t("nodeSays")}${errorText(e)}`));
  });

  disposers.push(onLinks(() => rows.forEach((r) => paintStatus(r))));
  const periodic = window.setInterval(() => {
    void refreshRows(shownRows());
    void drawRank();
  }, 60000);
  disposers.push(() => clearInterval(periodic));

  return {
    el,
    onChange(c: Change) {
      const ids = new Set<string>(c.jurisdictionIds ?? []);
      if (c.caseChange?.ownerId) ids.add(c.caseChange.ownerId);
      if (c.caseChange?.fromOwnerId) ids.add(c.caseChange.fromOwnerId);
      if (!c.caseChange) return; // directive changes do not move case counts
      const overdue = c.caseChange.kind === "TRANSITION_KIND_OVERDUE";
      for (const id of ids) {
        const known = rows.get(id);
        if (known) markDirty(known.chain, overdue);
        else void lineage(id).then((chain) => markDirty(chain, overdue));
      }
      if (Date.now() - rankAt > 5000) void drawRank();
    },
    onResync() {
      void refreshRows(shownRows());
    },
    dispose() {
      flusher.cancel();
      disposers.forEach((d) => d());
      openChart.dispose();
      rankChart.dispose();
    },
  };
}
