// What the page remembers between views, all of it read from the node and none of it
// authoritative: the topology views it fetched (names, parents, departments), which
// child node links are down (from /api/links), and the formatting helpers.

import {
  ApiError,
  Department,
  GetLinksResponse,
  Jurisdiction,
  JurisdictionView,
  getLinks,
  num,
  rpc,
} from "./api";
import { getLang } from "./i18n";

const views = new Map<string, Promise<JurisdictionView>>();
const known = new Map<string, Jurisdiction>();

export function jurisdictionView(id: string): Promise<JurisdictionView> {
  let p = views.get(id);
  if (!p) {
    p = rpc<JurisdictionView>("TopologyService", "GetJurisdiction", { id }).then((v) => {
      if (v.jurisdiction) remember(v.jurisdiction);
      for (const c of v.children ?? []) remember(c);
      for (const a of v.path ?? []) remember(a);
      return v;
    });
    // A failure is not cached: the next ask tries again.
    p.catch(() => views.delete(id));
    views.set(id, p);
  }
  return p;
}

function remember(j: Jurisdiction): void {
  if (j.id) known.set(j.id, j);
}

export function knownJurisdiction(id: string): Jurisdiction | undefined {
  return known.get(id);
}

export function nameOf(id: string | undefined): string {
  if (!id) return "";
  return known.get(id)?.name ?? id;
}

// id and its ancestors, root first (fetched once per id, then cached).
export async function lineage(id: string): Promise<string[]> {
  const chain: string[] = [];
  let cur = known.get(id);
  while (cur) {
    chain.unshift(cur.id);
    if (!cur.parentId) return chain;
    cur = known.get(cur.parentId);
  }
  try {
    const v = await jurisdictionView(id);
    return [...(v.path ?? []).map((j) => j.id), id];
  } catch {
    return [id];
  }
}

// Departments that may be summoned for a case owned by `ownerId`: the owner's own and
// those of its ancestors (nearest first).
export async function departmentsFor(ownerId: string): Promise<{ level: Jurisdiction; departments: Department[] }[]> {
  const ids = (await lineage(ownerId)).reverse();
  const out: { level: Jurisdiction; departments: Department[] }[] = [];
  for (const id of ids) {
    try {
      const v = await jurisdictionView(id);
      if (v.jurisdiction && (v.departments ?? []).length > 0) {
        out.push({ level: v.jurisdiction, departments: v.departments ?? [] });
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
    }
  }
  return out;
}

// ---- Node links: a child node whose link is down makes its subtree "unreachable". ----

let links: GetLinksResponse | null = null;
const linkListeners = new Set<() => void>();

export function onLinks(fn: () => void): () => void {
  linkListeners.add(fn);
  return () => linkListeners.delete(fn);
}

export async function refreshLinks(): Promise<void> {
  try {
    links = await getLinks();
  } catch (e) {
    // 403 (a caller the node accepts but may not read links) or an old gateway: no badges.
    if (e instanceof ApiError && e.status === 401) return;
    links = null;
  }
  for (const fn of linkListeners) fn();
}

// Roots of subtrees hosted by child nodes whose link is down.
export function downRoots(): Set<string> {
  const out = new Set<string>();
  for (const l of links?.links ?? []) {
    if (l.direction === "down" && l.peer && l.peer !== "parent" && !l.connected) out.add(l.peer);
  }
  return out;
}

// Whether `id` lies in a subtree whose node is unreachable (`chain`: id's lineage).
export function unreachableIn(chain: string[]): boolean {
  const down = downRoots();
  if (down.size === 0) return false;
  return chain.some((x) => down.has(x));
}

// ---- Formatting (times in China Standard Time, as the assessment days are) ----

const TZ = "Asia/Shanghai";

export function fmtTime(ms: string | number | undefined): string {
  const n = num(ms);
  if (!n) return "—";
  const d = new Date(n);
  return new Intl.DateTimeFormat(getLang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: TZ,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  }).format(d);
}

export function fmtShort(ms: string | number | undefined): string {
  const n = num(ms);
  if (!n) return "—";
  return new Intl.DateTimeFormat(getLang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: TZ,
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(new Date(n));
}

export function fmtInt(v: string | number | undefined): string {
  return num(v).toLocaleString(getLang() === "zh" ? "zh-CN" : "en-US");
}

export function fmtPct(value: number | undefined, defined: boolean | undefined): string {
  if (!defined) return "—";
  return `${((value ?? 0) * 100).toFixed(1)}%`;
}

// "YYYY-MM-DDTHH:MM" in China Standard Time (for datetime-local inputs) <-> epoch ms.
export function toCstInput(ms: number): string {
  const d = new Date(ms + 8 * 3600_000);
  return d.toISOString().slice(0, 16);
}
export function fromCstInput(v: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(v);
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) - 8 * 3600_000;
}
// "YYYY-MM-DD" (a CST day) -> noon of that day in epoch ms (safely inside it).
export function cstDayNoon(v: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], 12) - 8 * 3600_000;
}
export function cstDay(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);
}
