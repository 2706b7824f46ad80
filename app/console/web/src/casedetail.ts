// One case: its facts, summons and report-ins (吹哨报到), its history as a timeline (who,
// when, where, why), and the actions a leader or staff member may take (受理, 吹哨 with
// departments from the owner's and its ancestors' lists, 督办). The node decides; a
// refusal shows the node's own message.

import { Case, Change, Department, GetHistoryResponse, HistoryEntry, Jurisdiction, num, rpc } from "./api";
import { Coalescer, Ctx, View, canAct, errorBox, errorText } from "./context";
import { h, setChildren, setText } from "./dom";
import { categoryLabel, deadlineLabel, kindLabel, levelLabel, roleLabel, severityLabel, stateLabel, stateShort, t } from "./i18n";
import { departmentsFor, fmtTime, lineage, nameOf } from "./store";

type Action = "accept" | "whistle" | "supervise";
const OPEN_BEFORE_RESOLVE = new Set([
  "CASE_STATE_REPORTED",
  "CASE_STATE_ACCEPTED",
  "CASE_STATE_DISPATCHED",
  "CASE_STATE_IN_PROGRESS",
]);
const CLOSED = new Set(["CASE_STATE_CLOSED", "CASE_STATE_EVALUATED", "CASE_STATE_REJECTED"]);

export function caseDetailView(ctx: Ctx, caseId: string): View {
  let current: Case | null = null;
  let depts: { level: Jurisdiction; departments: Department[] }[] = [];
  let deptsFor = "";
  let renderedFor = "";
  const deptNames = new Map<string, string>();
  let action: Action | null = null;

  const head = h("div", { class: "view-head" });
  const facts = h("dl", { class: "facts" });
  const summons = h("div", { "data-testid": "summons" });
  const timeline = h("ol", { class: "timeline", "data-testid": "timeline" });
  const status = h("div", { class: "status-slot" });
  const actionsPanel = h("section", { class: "panel actions", "aria-labelledby": "actions-h" });

  const el = h(
    "div",
    { class: "view view-case" },
    head,
    status,
    h(
      "div",
      { class: "case-layout" },
      h(
        "div",
        { class: "case-main" },
        h("section", { class: "panel" }, h("h2", null, t("caseDetail")), facts),
        h("section", { class: "panel" }, h("h2", null, t("summons")), summons),
        canAct(ctx) ? actionsPanel : null,
      ),
      h("section", { class: "panel case-timeline", tabindex: 0, "aria-label": t("timeline") }, h("h2", null, t("timeline")), timeline),
    ),
  );

  // ---- actions ----

  const note = h("textarea", { id: "action-note", "data-testid": "action-note", rows: 2, maxlength: 4000 });
  const deptBox = h("fieldset", { class: "depts", "data-testid": "whistle-depts" });
  const actionError = h("p", { class: "error", role: "alert", "data-testid": "action-error", hidden: true });
  const actionResult = h("p", { class: "ok", role: "status", "data-testid": "action-result" });
  const submit = h("button", { type: "submit", class: "btn primary", "data-testid": "action-submit" }, t("actionSubmit"));
  const cancel = h("button", { type: "button", class: "btn" }, t("actionCancel"));
  const form = h(
    "form",
    { class: "action-form", hidden: true, "data-testid": "action-form" },
    deptBox,
    h("label", { for: "action-note" }, t("note")),
    note,
    h("div", { class: "row" }, submit, cancel),
  );
  const buttons: Record<Action, HTMLButtonElement> = {
    accept: h("button", { type: "button", class: "btn", "data-testid": "action-accept", "aria-pressed": "false" }, t("actionAccept")),
    whistle: h("button", { type: "button", class: "btn", "data-testid": "action-whistle", "aria-pressed": "false" }, t("actionWhistle")),
    supervise: h("button", { type: "button", class: "btn", "data-testid": "action-supervise", "aria-pressed": "false" }, t("actionSupervise")),
  };
  setChildren(
    actionsPanel,
    h("h2", { id: "actions-h" }, t("actions")),
    // 督办 is a leader's (a staff token would only be refused by the node).
    h("div", { class: "row" }, buttons.accept, buttons.whistle, ctx.claims.role === "leader" ? buttons.supervise : null),
    form,
    actionError,
    actionResult,
  );

  function choose(a: Action | null): void {
    action = a;
    for (const [k, b] of Object.entries(buttons)) b.setAttribute("aria-pressed", String(k === a));
    form.hidden = a === null;
    deptBox.hidden = a !== "whistle";
    actionError.hidden = true;
    setText(actionResult, "");
    if (a === "whistle") void fillDepartments();
    if (a) note.focus();
  }
  for (const [k, b] of Object.entries(buttons)) b.addEventListener("click", () => choose(action === k ? null : (k as Action)));
  cancel.addEventListener("click", () => choose(null));

  async function fillDepartments(): Promise<void> {
    const owner = current?.ownerId ?? "";
    if (!owner || renderedFor === owner) return;
    if (deptsFor !== owner) {
      setChildren(deptBox, h("legend", null, t("pickDepartments")), h("p", { class: "muted" }, t("loading")));
      try {
        depts = await departmentsFor(owner);
        deptsFor = owner;
      } catch (e) {
        setChildren(deptBox, h("legend", null, t("pickDepartments")), errorBox(e));
        return;
      }
    }
    renderedFor = owner;
    for (const g of depts) for (const d of g.departments) deptNames.set(d.id, d.name ?? d.id);
    setChildren(
      deptBox,
      h("legend", null, t("pickDepartments")),
      depts.length === 0 ? h("p", { class: "muted" }, t("noDepartments")) : null,
      depts.map((g) =>
        h(
          "div",
          { class: "dept-group" },
          h("div", { class: "dept-level" }, `${g.level.name ?? g.level.id} · ${levelLabel(g.level.level)}`),
          h(
            "div",
            { class: "dept-list" },
            g.departments.map((d) =>
              h(
                "label",
                { class: "check" },
                h("input", { type: "checkbox", value: d.id, "data-testid": `whistle-dept-${d.id}` }),
                d.name ?? d.id,
              ),
            ),
          ),
        ),
      ),
    );
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act();
  });

  async function act(): Promise<void> {
    if (!action) return;
    const text = note.value.trim();
    let command: Record<string, unknown>;
    if (action === "accept") command = { accept: { note: text } };
    else if (action === "supervise") command = { supervise: { note: text } };
    else {
      const ids = [...deptBox.querySelectorAll<HTMLInputElement>("input[type=checkbox]:checked")].map((i) => i.value);
      command = { whistle: { departmentIds: ids, note: text } };
    }
    submit.disabled = true;
    actionError.hidden = true;
    try {
      const c = await rpc<Case>("CaseService", "Act", { caseId, command });
      current = c;
      note.value = "";
      choose(null);
      setText(actionResult, t("actionDone"));
      await load();
    } catch (e) {
      actionError.hidden = false;
      setText(actionError, `${t("nodeSays")}${errorText(e)}`);
    } finally {
      submit.disabled = false;
    }
  }

  // ---- rendering ----

  function paintCase(c: Case): void {
    const owner = c.ownerId ?? "";
    const crumbLinks = (ids: string[]) => [
      h("a", { href: "#/tree" }, t("navTree")),
      ids.map((id) => [" / ", h("a", { href: `#/j/${encodeURIComponent(id)}` }, nameOf(id) || id)]),
    ];
    // The owner at once; every level between the root and it once its lineage is known.
    const crumbs = h("nav", { class: "crumbs", "aria-label": t("cases"), "data-testid": "case-crumbs" }, crumbLinks([owner]));
    if (owner) void lineage(owner).then((ids) => setChildren(crumbs, crumbLinks(ids)));
    setChildren(
      head,
      h(
        "div",
        null,
        crumbs,
        h(
          "h1",
          null,
          h("span", { class: "mono" }, c.id),
          " ",
          h("span", { class: `state state-${stateShort(c.state ?? "")}`, "data-testid": `case-state-${c.id}` }, stateLabel(c.state)),
          c.overdueNow ? h("span", { class: "badge badge-hot" }, t("overdue")) : null,
        ),
      ),
    );
    const dd = (label: string, value: string | Node | null) =>
      value === null || value === "" ? null : [h("dt", null, label), h("dd", null, value)];
    const d = c.deadlines ?? {};
    setChildren(
      facts,
      dd(t("category"), categoryLabel(c.category)),
      dd(t("severity"), severityLabel(c.severity)),
      dd(t("owner"), nameOf(owner) || owner),
      dd(t("place"), [c.place?.address, c.place?.gridId ? nameOf(c.place.gridId) : ""].filter(Boolean).join(" · ")),
      dd(t("text"), c.text ?? ""),
      dd(t("reporter"), c.reporter ?? ""),
      dd(t("handler"), c.handlerDepartmentId ? deptNames.get(c.handlerDepartmentId) ?? c.handlerDepartmentId : ""),
      dd(t("reportedAt"), fmtTime(c.createdAtMs)),
      num(d.acceptByMs) ? dd(t("acceptBy"), fmtTime(d.acceptByMs)) : null,
      num(d.dispatchByMs) ? dd(t("dispatchBy"), fmtTime(d.dispatchByMs)) : null,
      num(d.resolveByMs) ? dd(t("resolveBy"), fmtTime(d.resolveByMs)) : null,
      num(d.verifyByMs) ? dd(t("verifyBy"), fmtTime(d.verifyByMs)) : null,
      num(d.evaluateByMs) ? dd(t("evaluateBy"), fmtTime(d.evaluateByMs)) : null,
      c.supervisions ? dd(t("supervisions"), String(c.supervisions)) : null,
      c.escalations ? dd(t("escalations"), String(c.escalations)) : null,
      c.satisfaction ? dd(t("satisfaction"), `${c.satisfaction} / 5`) : null,
      c.readOnly ? dd("", t("readOnly", { node: c.ownerNodeId || "?" })) : null,
    );
    const list = c.summons ?? [];
    setChildren(
      summons,
      list.length === 0
        ? h("p", { class: "muted" }, t("noSummons"))
        : h(
            "div",
            { class: "table-scroll", tabindex: 0, role: "region", "aria-label": t("summons") },
            h(
              "table",
              { class: "grid-table compact summons-table" },
              h("caption", { class: "sr-only" }, t("summons")),
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  [t("department"), t("summonedAt"), t("reportInBy"), t("reportedInAt"), t("doneAt"), t("status")].map((x) =>
                    h("th", { scope: "col" }, x),
                  ),
                ),
              ),
              h(
                "tbody",
                null,
                list.map((s) =>
                  h(
                    "tr",
                    { "data-testid": `summons-${s.departmentId}`, class: s.noShow ? "overdue" : null },
                    h("td", null, deptNames.get(s.departmentId ?? "") ?? s.departmentId ?? ""),
                    h("td", { class: "mono" }, fmtTime(s.summonedAtMs)),
                    h("td", { class: "mono" }, fmtTime(s.reportInByMs)),
                    h("td", { class: "mono" }, fmtTime(s.reportedInAtMs)),
                    h("td", { class: "mono" }, fmtTime(s.doneAtMs)),
                    h(
                      "td",
                      null,
                      num(s.refusedAtMs)
                        ? null
                        : num(s.doneAtMs)
                          ? h("span", { class: "badge badge-ok" }, t("summonsDone"))
                          : num(s.reportedInAtMs)
                            ? h("span", { class: "badge" }, t("summonsReported"))
                            : s.noShow
                              ? null
                              : h("span", { class: "badge" }, t("summonsAwaiting")),
                      s.noShow ? h("span", { class: "badge badge-hot" }, t("noShow")) : null,
                      num(s.refusedAtMs) ? h("span", { class: "badge" }, `${t("refused")}${s.refuseReason ? `：${s.refuseReason}` : ""}`) : null,
                    ),
                  ),
                ),
              ),
            ),
          ),
    );
    const st = c.state ?? "";
    buttons.accept.disabled = st !== "CASE_STATE_REPORTED";
    buttons.whistle.disabled = !OPEN_BEFORE_RESOLVE.has(st);
    buttons.supervise.disabled = CLOSED.has(st);
  }

  function who(e: HistoryEntry): string {
    const a = e.actor ?? {};
    const where = a.departmentId ? deptNames.get(a.departmentId) ?? a.departmentId : a.jurisdictionId ? nameOf(a.jurisdictionId) : "";
    return [a.user, roleLabel(a.role), where].filter(Boolean).join(" · ");
  }

  function paintHistory(hist: GetHistoryResponse): void {
    const entries = [...(hist.entries ?? [])].sort((a, b) => num(b.seq) - num(a.seq));
    setChildren(
      timeline,
      entries.map((e) => {
        const moved = e.fromJurisdictionId && e.fromJurisdictionId !== e.jurisdictionId;
        const stateMoved = e.fromState && e.fromState !== e.toState && e.fromState !== "CASE_STATE_UNSPECIFIED";
        return h(
          "li",
          { "data-testid": `timeline-entry-${num(e.seq)}`, class: `kind-${(e.kind ?? "").replace(/^TRANSITION_KIND_/, "").toLowerCase()}` },
          h(
            "div",
            { class: "tl-head" },
            h("span", { class: "tl-kind" }, kindLabel(e.kind)),
            h("time", { class: "mono", datetime: new Date(num(e.atMs)).toISOString() }, fmtTime(e.atMs)),
            h("span", { class: "muted" }, `#${num(e.seq)}`),
          ),
          h(
            "dl",
            { class: "tl-body" },
            h("dt", null, t("who")),
            h("dd", null, who(e) || "—"),
            h("dt", null, t("where")),
            h("dd", null, moved ? `${nameOf(e.fromJurisdictionId)} → ${nameOf(e.jurisdictionId)}` : nameOf(e.jurisdictionId) || "—"),
            h("dt", null, t("state")),
            h("dd", null, stateMoved ? `${stateLabel(e.fromState)} → ${stateLabel(e.toState)}` : stateLabel(e.toState)),
            (e.departmentIds ?? []).length
              ? [h("dt", null, t("department")), h("dd", null, (e.departmentIds ?? []).map((d) => deptNames.get(d) ?? d).join("、"))]
              : null,
            (e.deadlinesMissed ?? []).length
              ? [h("dt", null, t("overdue")), h("dd", null, (e.deadlinesMissed ?? []).map(deadlineLabel).join("、"))]
              : null,
            e.noticeToId ? [h("dt", null, t("noticeTo")), h("dd", null, nameOf(e.noticeToId) || e.noticeToId)] : null,
            e.score ? [h("dt", null, t("satisfaction")), h("dd", null, String(e.score))] : null,
            h("dt", null, t("why")),
            h("dd", null, e.note || "—"),
          ),
        );
      }),
    );
  }

  async function load(): Promise<void> {
    try {
      const [c, hist] = await Promise.all([
        rpc<Case>("CaseService", "Get", { caseId }),
        rpc<GetHistoryResponse>("CaseService", "History", { caseId }),
      ]);
      current = c;
      // Names of everyone and everywhere the history mentions.
      const ids = new Set<string>([c.ownerId ?? "", c.place?.gridId ?? ""]);
      for (const e of hist.entries ?? []) {
        ids.add(e.jurisdictionId ?? "");
        ids.add(e.fromJurisdictionId ?? "");
        ids.add(e.actor?.jurisdictionId ?? "");
        ids.add(e.noticeToId ?? "");
      }
      ids.delete("");
      await Promise.all([...ids].map((id) => lineage(id)));
      if (c.ownerId && deptsFor !== c.ownerId) {
        try {
          depts = await departmentsFor(c.ownerId);
          deptsFor = c.ownerId;
          for (const g of depts) for (const d of g.departments) deptNames.set(d.id, d.name ?? d.id);
        } catch {
          /* names fall back to ids */
        }
      }
      paintCase(c);
      paintHistory(hist);
      setChildren(status);
    } catch (e) {
      setChildren(status, errorBox(e));
    }
  }

  void load();
  const reload = new Coalescer(100, load);

  return {
    el,
    onChange(c: Change) {
      if (c.caseChange?.caseId === caseId) reload.kick();
    },
    onResync: () => reload.kick(),
    dispose: () => reload.cancel(),
  };
}
