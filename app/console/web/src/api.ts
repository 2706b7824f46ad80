// The gateway API (whistle-console): POST /api/rpc/<Service>/<Method> with proto3 JSON,
// GET /api/links, GET /api/watch (watch.ts). Every call carries the signed-in token as
// `Authorization: Bearer`; the node decides what the caller may see and do. A 401
// anywhere ends the session (the page goes back to sign-in with an expiry message).

const TOKEN_KEY = "whistle.console.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthenticated: (message: string) => void = () => {};

export function setUnauthenticatedHandler(fn: (message: string) => void): void {
  onUnauthenticated = fn;
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return memoryToken;
  }
}
let memoryToken: string | null = null;

export function setToken(token: string | null): void {
  memoryToken = token;
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage disabled: the in-memory copy is used */
  }
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Turns a non-2xx response into an ApiError (the gateway's {"code","message"} when present).
export async function errorFrom(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { code?: unknown; message?: unknown };
    if (typeof body.code === "string") code = body.code;
    if (typeof body.message === "string") message = body.message;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message);
}

export function handleAuthFailure(err: ApiError): void {
  if (err.status === 401) onUnauthenticated(err.message);
}

async function request<T>(path: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) },
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "UNAVAILABLE", `gateway unreachable: ${(e as Error).message}`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    handleAuthFailure(err);
    throw err;
  }
  return (await res.json()) as T;
}

export function rpc<T = unknown>(service: string, method: string, body: unknown): Promise<T> {
  return request<T>(`api/rpc/${service}/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
}

export function getLinks(): Promise<GetLinksResponse> {
  return request<GetLinksResponse>("api/links", { method: "GET" });
}

// Proto3 JSON prints int64 as strings and omits zero values: read them with these.
export function num(v: string | number | undefined | null): number {
  if (v === undefined || v === null || v === "") return 0;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

// ---- The messages the page reads (proto3 JSON of whistle.v1; fields may be absent) ----

export interface Jurisdiction {
  id: string;
  name?: string;
  level?: string;
  parentId?: string;
}
export interface Department {
  id: string;
  name?: string;
  kind?: string;
  jurisdictionId?: string;
}
export interface JurisdictionView {
  jurisdiction?: Jurisdiction;
  children?: Jurisdiction[];
  departments?: Department[];
  path?: Jurisdiction[];
  gridsBelow?: string;
}
export interface StateCount {
  state?: string;
  count?: string;
}
export interface CountCasesResponse {
  counts?: StateCount[];
}
export interface Rate {
  name?: string;
  numerator?: string;
  denominator?: string;
  value?: number;
  defined?: boolean;
}
export interface AssessResponse {
  subjectId?: string;
  department?: boolean;
  fromDay?: string;
  toDay?: string;
  counts?: Record<string, string>;
  rates?: Rate[];
}
export interface RankEntry {
  rank?: number;
  jurisdictionId?: string;
  name?: string;
  count?: string;
  rate?: Rate;
}
export interface RankResponse {
  figure?: string;
  ascending?: boolean;
  fromDay?: string;
  toDay?: string;
  entries?: RankEntry[];
}
export interface Caller {
  user?: string;
  role?: string;
  jurisdictionId?: string;
  departmentId?: string;
}
export interface Summons {
  departmentId?: string;
  summonedAtMs?: string;
  reportInByMs?: string;
  reportedInAtMs?: string;
  doneAtMs?: string;
  noShow?: boolean;
  refusedAtMs?: string;
  refuseReason?: string;
}
export interface Case {
  id: string;
  category?: string;
  severity?: string;
  place?: { gridId?: string; address?: string };
  text?: string;
  reporter?: string;
  state?: string;
  ownerId?: string;
  handlerDepartmentId?: string;
  summons?: Summons[];
  deadlines?: {
    acceptByMs?: string;
    resolveByMs?: string;
    verifyByMs?: string;
    evaluateByMs?: string;
    dispatchByMs?: string;
  };
  satisfaction?: number;
  createdAtMs?: string;
  updatedAtMs?: string;
  escalations?: number;
  supervisions?: number;
  overdueCount?: number;
  nextDeadlineMs?: string;
  overdueNow?: boolean;
  ownerNodeId?: string;
  readOnly?: boolean;
}
export interface ListCasesResponse {
  cases?: Case[];
  nextPageToken?: string;
  unreadableCaseIds?: string[];
}
export interface HistoryEntry {
  caseId?: string;
  seq?: string;
  kind?: string;
  fromState?: string;
  toState?: string;
  actor?: Caller;
  jurisdictionId?: string;
  fromJurisdictionId?: string;
  atMs?: string;
  note?: string;
  departmentIds?: string[];
  score?: number;
  noticeToId?: string;
  deadlinesMissed?: string[];
}
export interface GetHistoryResponse {
  entries?: HistoryEntry[];
  unreadableSeqs?: string[];
}
export interface ProgressCounts {
  total?: string;
  signed?: string;
  done?: string;
  signedLate?: string;
  doneLate?: string;
}
export interface Directive {
  id: string;
  draft?: {
    title?: string;
    text?: string;
    deadlineUnixMs?: string;
    targets?: {
      level?: { subtreeId?: string; level?: string };
      jurisdictions?: { ids?: string[] };
      departments?: { ids?: string[] };
    };
  };
  issuerUser?: string;
  issuerJurisdictionId?: string;
  issuedAtUnixMs?: string;
  state?: string;
  version?: string;
}
export interface ProgressRow {
  jurisdictionId?: string;
  name?: string;
  level?: string;
  counts?: ProgressCounts;
  overdue?: string;
}
export interface DirectiveView {
  directive?: Directive;
  progress?: ProgressRow;
}
export interface ListDirectivesResponse {
  directives?: DirectiveView[];
  nextPageToken?: string;
}
export interface GetProgressResponse {
  directive?: Directive;
  total?: ProgressRow;
  children?: ProgressRow[];
  asOfUnixMs?: string;
}
export interface Receipt {
  directiveId?: string;
  unitId?: string;
  jurisdictionId?: string;
  state?: string;
  signedAtUnixMs?: string;
  signedBy?: string;
  doneAtUnixMs?: string;
}
export interface ListTargetsResponse {
  directiveVersion?: string;
  receipts?: Receipt[];
  nextPageToken?: string;
}
export interface IssueDirectiveResponse {
  directive?: Directive;
  targets?: string;
}
export interface LinkStatus {
  peer?: string;
  direction?: string;
  peerNodeId?: string;
  connected?: boolean;
  lastError?: string;
}
export interface GetLinksResponse {
  nodeId?: string;
  hostedRoot?: string;
  childRoots?: string[];
  links?: LinkStatus[];
}
export interface CaseChange {
  caseId?: string;
  seq?: string;
  kind?: string;
  state?: string;
  ownerId?: string;
  fromOwnerId?: string;
  atMs?: string;
}
export interface DirectiveChange {
  directiveId?: string;
  jurisdictionId?: string;
  delta?: ProgressCounts;
  version?: string;
  state?: string;
}
export interface Change {
  token?: string;
  atMs?: string;
  jurisdictionIds?: string[];
  caseChange?: CaseChange;
  directiveChange?: DirectiveChange;
}
