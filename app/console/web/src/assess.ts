// Assessment (考核): a jurisdiction's figures for a period (AssessmentService.Assess) as a
// table and a chart over recent periods, and its children ranked by a figure (Rank) as a
// table and a chart; each table exports as CSV (UTF-8 with a BOM, so Excel reads Chinese).

import { AssessResponse, RankResponse, Rate, num, rpc } from "./api";
import { BarPanel } from "./charts";
import { Ctx, View, errorBox } from "./context";
import { downloadCsv } from "./csv";
import { h, setChildren } from "./dom";
import { RANK_FIGURES, figureLabel, levelLabel, t } from "./i18n";
import { cstDay, cstDayNoon, fmtInt, fmtPct, jurisdictionView } from "./store";

type PeriodKind = "PERIOD_DAY" | "PERIOD_WEEK" | "PERIOD_MONTH" | "RANGE";

// The order figures are shown in (docs/assessment.md); unknown ones follow.
const COUNT_ORDER = [
  "received",
  "responded",
  "responded_in_time",
  "responses_missed",
  "resolved",
  "resolved_in_time",
  "resolutions_missed",
  "closed",
  "closed_in_time",
  "local_closed",
  "kept_local",
  "evaluated",
  "satisfied",
  "score_sum",
  "evaluated_on_behalf",
  "on_behalf_score_sum",
  "evaluation_expired",
  "escalations_out",
  "returns",
  "reopened",
  "recurrences",
  "no_shows",
  "overdue_now",
];
const MEANS = new Set(["satisfaction_mean", "on_behalf_mean"]);
const DAY = 86400_000;

function rateText(r: Rate | undefined): string {
  if (!r) return "—";
  if (MEANS.has(r.name ?? "")) return r.defined ? (r.value ?? 0).toFixed(2) : "—";
  return fmtPct(r.value, r.defined);
}

export function assessView(ctx: Ctx): View {
  const subject = h("select", { id: "assess-subject", "data-testid": "assess-subject" });
  const period = h(
    "select",
    { id: "assess-period", "data-testid": "assess-period" },
    h("option", { value: "PERIOD_DAY" }, t("periodDay")),
    h("option", { value: "PERIOD_WEEK" }, t("periodWeek")),
    h("option", { value: "PERIOD_MONTH" }, t("periodMonth")),
    h("option", { value: "RANGE" }, t("periodRange")),
  );
  const today = cstDay(Date.now());
  const at = h("input", { id: "assess-at", type: "date", value: today, "data-testid": "assess-at" });
  const from = h("input", { id: "assess-from", type: "date", value: cstDay(Date.now() - 29 * DAY), "data-testid": "assess-from" });
  const to = h("input", { id: "assess-to", type: "date", value: today, "data-testid": "assess-to" });
  const figure = h(
    "select",
    { id: "assess-figure", "data-testid": "assess-figure" },
    RANK_FIGURES.map((f) => h("option", { value: f }, figureLabel(f))),
  );
  const atField = h("div", { class: "field" }, h("label", { for: "assess-at" }, t("periodAt")), at);
  const rangeFields = h(
    "div",
    { class: "field-group", hidden: true },
    h("div", { class: "field" }, h("label", { for: "assess-from" }, t("from")), from),
    h("div", { class: "field" }, h("label", { for: "assess-to" }, t("to")), to),
  );
  const apply = h("button", { type: "submit", class: "btn primary", "data-testid": "assess-apply" }, t("apply"));
  const form = h(
    "form",
    { class: "toolbar" },
    h("div", { class: "field" }, h("label", { for: "assess-subject" }, t("subject")), subject),
    h("div", { class: "field" }, h("label", { for: "assess-period" }, t("period")), period),
    atField,
    rangeFields,
    h("div", { class: "field" }, h("label", { for: "assess-figure" }, t("rankBy")), figure),
    apply,
  );

  const status = h("div", { class: "status-slot" });
  const assessBox = h("div");
  const rankBox = h("div");
  const exportBtn = h("button", { type: "button", class: "btn", "data-testid": "export-csv", disabled: true }, t("exportCsv"));
  const exportRankBtn = h("button", { type: "button", class: "btn", "data-testid": "export-csv-rank", disabled: true }, t("exportCsv"));
  const periodChartEl = h("div", { class: "chart", role: "img", "aria-label": t("byPeriod") });
  const childChartEl = h("div", { class: "chart", role: "img", "aria-label": t("byChild") });
  const periodChart = new BarPanel(periodChartEl);
  const childChart = new BarPanel(childChartEl);
  const periodTitle = h("h2", null, t("byPeriod"));
  const rankTitle = h("h2", null, t("rankTable"));

  const el = h(
    "div",
    { class: "view view-assess" },
    h("h1", { class: "sr-only" }, t("navAssess")),
    form,
    status,
    h(
      "div",
      { class: "assess-layout" },
      // Focusable regions: on the big screen a panel may scroll, and the
      // keyboard must reach what it hides.
      h("section", { class: "panel", tabindex: 0, "aria-label": t("assessTable") }, h("div", { class: "row spread" }, h("h2", null, t("assessTable")), exportBtn), assessBox),
      h("section", { class: "panel", tabindex: 0, "aria-label": t("byPeriod") }, periodTitle, periodChartEl),
      h("section", { class: "panel", tabindex: 0, "aria-label": t("rankTable") }, h("div", { class: "row spread" }, rankTitle, exportRankBtn), rankBox),
      h("section", { class: "panel", tabindex: 0, "aria-label": t("byChild") }, h("h2", null, t("byChild")), childChartEl),
    ),
  );

  let lastAssess: AssessResponse | null = null;
  let lastRank: RankResponse | null = null;

  function periodSpec(atMs?: number): Record<string, unknown> {
    const kind = period.value as PeriodKind;
    if (kind === "RANGE") return { fromMs: String(cstDayNoon(from.value)), toMs: String(cstDayNoon(to.value)) };
    const ms = atMs ?? cstDayNoon(at.value);
    return { period: kind, atMs: Number.isFinite(ms) ? String(ms) : "0" };
  }

  function assessTable(a: AssessResponse): HTMLElement {
    const counts = a.counts ?? {};
    const names = [...COUNT_ORDER.filter((n) => n in counts), ...Object.keys(counts).filter((n) => !COUNT_ORDER.includes(n)).sort()];
    return h(
      "table",
      { class: "grid-table compact", "data-testid": "assess-table" },
      h("caption", { class: "sr-only" }, `${t("assessTable")} ${a.fromDay ?? ""} – ${a.toDay ?? ""}`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, t("figure")),
          h("th", { scope: "col", class: "num" }, t("value")),
          h("th", { scope: "col", class: "num" }, t("numerator")),
          h("th", { scope: "col", class: "num" }, t("denominator")),
        ),
      ),
      h(
        "tbody",
        null,
        (a.rates ?? []).map((r) =>
          h(
            "tr",
            { class: "rate", "data-testid": `assess-${r.name}` },
            h("th", { scope: "row" }, figureLabel(r.name ?? "")),
            h("td", { class: "num strong" }, rateText(r)),
            h("td", { class: "num" }, fmtInt(r.numerator)),
            h("td", { class: "num" }, fmtInt(r.denominator)),
          ),
        ),
        names.map((n) =>
          h(
            "tr",
            { "data-testid": `assess-${n}` },
            h("th", { scope: "row" }, figureLabel(n)),
            h("td", { class: "num" }, fmtInt(counts[n])),
            h("td", null),
            h("td", null),
          ),
        ),
      ),
    );
  }

  function rankValue(e: NonNullable<RankResponse["entries"]>[number]): string {
    return e.rate ? rateText(e.rate) : fmtInt(e.count);
  }

  function rankTable(r: RankResponse): HTMLElement {
    const rate = (r.entries ?? []).some((e) => e.rate);
    return h(
      "table",
      { class: "grid-table compact", "data-testid": "rank-table" },
      h("caption", { class: "sr-only" }, `${t("rankTable")}: ${figureLabel(r.figure ?? "")}`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col", class: "num" }, t("rank")),
          h("th", { scope: "col" }, t("jurisdiction")),
          h("th", { scope: "col", class: "num" }, figureLabel(r.figure ?? "")),
          rate ? h("th", { scope: "col", class: "num" }, `${t("numerator")} / ${t("denominator")}`) : null,
        ),
      ),
      h(
        "tbody",
        null,
        (r.entries ?? []).map((e) =>
          h(
            "tr",
            { "data-testid": `rank-row-${e.jurisdictionId}` },
            h("td", { class: "num strong" }, e.rank ? String(e.rank) : "—"),
            h("th", { scope: "row" }, e.name || e.jurisdictionId || ""),
            h("td", { class: "num" }, rankValue(e)),
            rate ? h("td", { class: "num" }, `${fmtInt(e.rate?.numerator)} / ${fmtInt(e.rate?.denominator)}`) : null,
          ),
        ),
      ),
    );
  }

  async function loadPeriods(subjectId: string): Promise<void> {
    const kind = period.value as PeriodKind;
    if (kind === "RANGE") {
      periodChartEl.closest("section")!.hidden = true;
      return;
    }
    periodChartEl.closest("section")!.hidden = false;
    const base = cstDayNoon(at.value);
    const n = kind === "PERIOD_DAY" ? 7 : 6;
    const ats: number[] = [];
    for (let i = n - 1; i >= 0; i--) {
      if (kind === "PERIOD_DAY") ats.push(base - i * DAY);
      else if (kind === "PERIOD_WEEK") ats.push(base - i * 7 * DAY);
      else {
        const d = new Date(base);
        ats.push(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 15, 4));
      }
    }
    const res = await Promise.all(
      ats.map((x) =>
        rpc<AssessResponse>("AssessmentService", "Assess", { jurisdictionId: subjectId, period: periodSpec(x) }).catch(() => null),
      ),
    );
    const label = (a: AssessResponse | null, i: number) => {
      if (!a) return cstDay(ats[i]);
      if (kind === "PERIOD_DAY") return (a.fromDay ?? "").slice(5);
      if (kind === "PERIOD_MONTH") return (a.fromDay ?? "").slice(0, 7);
      return `${(a.fromDay ?? "").slice(5)}~${(a.toDay ?? "").slice(5)}`;
    };
    const pick = (a: AssessResponse | null, f: string) => (a ? num(a.counts?.[f]) : null);
    const figs = [
      ["received", "#4fb3ff"],
      ["resolved", "#8fd36a"],
      ["closed", "#37d4c4"],
      ["escalations_out", "#f2b134"],
      ["no_shows", "#ff7a7a"],
    ];
    periodChart.set({
      categories: res.map(label),
      series: figs.map(([f, color]) => ({ name: figureLabel(f), values: res.map((a) => pick(a, f)), color })),
      big: ctx.screen,
    });
  }

  async function load(): Promise<void> {
    const subjectId = subject.value || ctx.rootId;
    const spec = periodSpec();
    setChildren(status);
    exportBtn.disabled = true;
    exportRankBtn.disabled = true;
    const [a, r] = await Promise.allSettled([
      rpc<AssessResponse>("AssessmentService", "Assess", { jurisdictionId: subjectId, period: spec }),
      rpc<RankResponse>("AssessmentService", "Rank", { jurisdictionId: subjectId, figure: figure.value, period: spec }),
    ]);
    if (a.status === "fulfilled") {
      lastAssess = a.value;
      setChildren(assessBox, h("p", { class: "muted" }, `${a.value.fromDay ?? ""} – ${a.value.toDay ?? ""}`), assessTable(a.value));
      exportBtn.disabled = false;
    } else {
      lastAssess = null;
      setChildren(assessBox, errorBox(a.reason));
    }
    if (r.status === "fulfilled") {
      lastRank = r.value;
      const entries = r.value.entries ?? [];
      setChildren(rankBox, entries.length ? rankTable(r.value) : h("p", { class: "muted" }, t("noData")));
      exportRankBtn.disabled = entries.length === 0;
      const isRate = entries.some((e) => e.rate);
      childChart.set({
        categories: entries.map((e) => e.name || e.jurisdictionId || ""),
        series: [
          {
            name: figureLabel(r.value.figure ?? ""),
            values: entries.map((e) => (isRate ? (e.rate?.defined ? (e.rate.value ?? 0) : null) : num(e.count))),
            color: "#4fb3ff",
          },
        ],
        horizontal: true,
        percent: isRate && !MEANS.has(r.value.figure ?? ""),
        big: ctx.screen,
      });
    } else {
      lastRank = null;
      setChildren(rankBox, errorBox(r.reason));
    }
    await loadPeriods(subjectId);
  }

  exportBtn.addEventListener("click", () => {
    const a = lastAssess;
    if (!a) return;
    const rows: (string | number)[][] = [[t("subject"), t("figure"), "name", t("value"), t("numerator"), t("denominator"), t("from"), t("to")]];
    for (const r of a.rates ?? []) {
      rows.push([a.subjectId ?? "", figureLabel(r.name ?? ""), r.name ?? "", r.defined ? String(r.value ?? 0) : "", num(r.numerator), num(r.denominator), a.fromDay ?? "", a.toDay ?? ""]);
    }
    for (const [k, v] of Object.entries(a.counts ?? {})) {
      rows.push([a.subjectId ?? "", figureLabel(k), k, num(v), "", "", a.fromDay ?? "", a.toDay ?? ""]);
    }
    downloadCsv(`assess-${a.subjectId}-${a.fromDay}-${a.toDay}.csv`, rows);
  });
  exportRankBtn.addEventListener("click", () => {
    const r = lastRank;
    if (!r) return;
    const rows: (string | number)[][] = [[t("rank"), "jurisdiction_id", t("jurisdiction"), r.figure ?? "", t("numerator"), t("denominator"), t("from"), t("to")]];
    for (const e of r.entries ?? []) {
      rows.push([
        e.rank ? e.rank : "",
        e.jurisdictionId ?? "",
        e.name ?? "",
        e.rate ? (e.rate.defined ? String(e.rate.value ?? 0) : "") : num(e.count),
        e.rate ? num(e.rate.numerator) : "",
        e.rate ? num(e.rate.denominator) : "",
        r.fromDay ?? "",
        r.toDay ?? "",
      ]);
    }
    downloadCsv(`rank-${subject.value || ctx.rootId}-${r.figure}-${r.fromDay}-${r.toDay}.csv`, rows);
  });

  period.addEventListener("change", () => {
    const range = period.value === "RANGE";
    rangeFields.hidden = !range;
    atField.hidden = range;
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void load().catch((e) => setChildren(status, errorBox(e)));
  });

  void jurisdictionView(ctx.rootId)
    .then((v) => {
      const opts = [v.jurisdiction, ...(v.children ?? [])].filter((j): j is NonNullable<typeof j> => !!j);
      setChildren(
        subject,
        opts.map((j) => h("option", { value: j.id }, `${j.name ?? j.id}（${levelLabel(j.level)}）`)),
      );
      subject.value = ctx.rootId;
    })
    .catch(() => setChildren(subject, h("option", { value: ctx.rootId }, ctx.rootId)))
    .finally(() => void load().catch((e) => setChildren(status, errorBox(e))));

  return {
    el,
    dispose() {
      periodChart.dispose();
      childChart.dispose();
    },
  };
}
