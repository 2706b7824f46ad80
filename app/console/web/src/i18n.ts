// Labels in the users' language: Chinese by default with the domain's own terms
// (网格, 上报, 受理, 吹哨, 报到, 督办, 办结, 评价, 签收, 反馈, 考核), English on request
// (?lang=en or the toggle; remembered in localStorage).

export type Lang = "zh" | "en";

const zh = {
  appTitle: "社会治理指挥中心",
  appSub: "吹哨报到 · 指挥台",
  navTree: "辖区态势",
  navDirectives: "指令督办",
  navAssess: "考核排名",
  signinTitle: "登录指挥台",
  signinToken: "访问令牌 (JWT)",
  signinHint: "粘贴签发给您的令牌。令牌只保存在本浏览器标签页中，关闭即失效。",
  signinSubmit: "登录",
  signinEmpty: "请粘贴令牌",
  signinMalformed: "令牌格式不正确（应为三段以点分隔的 JWT）",
  sessionExpired: "登录已失效，请重新登录",
  nodeUnreachable: "节点不可达",
  nodeUnreachableHint: "暂时无法连接指挥中心节点，登录仍保留。每 {s} 秒自动重试一次，也可立即重试。",
  nodeRefused: "节点拒绝了请求",
  retryNow: "立即重试",
  retrying: "正在重试…",
  deptTitle: "本指挥台供辖区领导和工作人员使用",
  deptText: "职能部门请通过收件箱处理被吹哨和派遣的案件：命令行 whistlectl inbox summoned，接口 InboxService.DepartmentCases。",
  signout: "退出",
  modeScreen: "大屏模式",
  modeDesk: "桌面模式",
  langOther: "English",
  live: "实时",
  connecting: "连接中…",
  reconnecting: "重连中…",
  offline: "未连接",
  jurisdiction: "辖区",
  level: "层级",
  open: "在办合计",
  overdueNow: "当前超期",
  noShows: "未报到",
  status: "状态",
  unreachable: "节点失联",
  unreachableTitle: "承载该辖区的节点当前无法连接，显示的是最后已知数据",
  expand: "展开",
  collapse: "收起",
  treeCaption: "各级辖区在办案件（按状态）、当前超期与今日未报到部门",
  todayReceived: "今日上报",
  todayResolved: "今日办结",
  responseRate: "及时受理率",
  resolutionRate: "按期办结率",
  satisfactionRate: "满意率",
  openByChild: "下级在办案件",
  rankTitle: "下级及时受理率排名（今日）",
  loading: "加载中…",
  noData: "暂无数据",
  error: "出错",
  retry: "重试",
  cases: "案件列表",
  caseId: "案件编号",
  category: "类别",
  severity: "等级",
  state: "状态",
  owner: "承办辖区",
  place: "地点",
  reportedAt: "上报时间",
  nextDeadline: "下一时限",
  overdue: "超期",
  allStates: "全部状态",
  filterState: "按状态筛选",
  prevPage: "上一页",
  nextPage: "下一页",
  page: "第 {n} 页",
  back: "返回",
  caseDetail: "案件详情",
  text: "描述",
  reporter: "上报人",
  handler: "承办部门",
  deadlines: "时限",
  acceptBy: "受理时限",
  dispatchBy: "派遣时限",
  resolveBy: "办结时限",
  verifyBy: "核查时限",
  evaluateBy: "评价时限",
  satisfaction: "评价得分",
  supervisions: "督办次数",
  escalations: "上报次数",
  readOnly: "只读副本（承办节点：{node}）",
  summons: "吹哨报到",
  department: "部门",
  summonedAt: "吹哨时间",
  reportInBy: "报到时限",
  reportedInAt: "报到时间",
  doneAt: "完成时间",
  noShow: "未按时报到",
  refused: "退单",
  summonsAwaiting: "待报到",
  summonsReported: "已报到",
  summonsDone: "已完成",
  noSummons: "尚无吹哨或派遣",
  noticeTo: "督办通知",
  timeline: "处置经过",
  who: "操作人",
  when: "时间",
  where: "辖区",
  why: "说明",
  actions: "处置操作",
  actionAccept: "受理",
  actionWhistle: "吹哨",
  actionSupervise: "督办",
  actionSubmit: "提交",
  actionCancel: "取消",
  note: "说明（理由或备注）",
  pickDepartments: "选择吹哨部门",
  noDepartments: "本级及上级没有可召集的部门",
  actionDone: "已提交",
  directives: "指令",
  directiveNew: "下发指令",
  directiveTitle: "标题",
  directiveText: "指令内容",
  directiveLevel: "下发到",
  directiveSubtree: "范围",
  directiveDeadline: "完成时限",
  directiveSubmit: "下发",
  directiveIssued: "已下发，目标单位 {n} 个",
  directiveList: "指令列表",
  issuedAt: "下发时间",
  issuer: "下发单位",
  deadline: "时限",
  progress: "进度",
  signed: "签收",
  done: "反馈完成",
  total: "目标",
  overdueUnits: "逾期",
  unsigned: "未签收单位",
  unit: "单位",
  receiptState: "状态",
  noUnsigned: "全部已签收",
  cancelled: "已撤销",
  active: "进行中",
  assess: "考核",
  period: "周期",
  periodAt: "日期",
  periodDay: "日",
  periodWeek: "周",
  periodMonth: "月",
  periodRange: "自定义区间",
  from: "起",
  to: "止",
  apply: "查询",
  figure: "指标",
  value: "数值",
  numerator: "分子",
  denominator: "分母",
  rank: "名次",
  rankBy: "排名指标",
  exportCsv: "导出 CSV",
  assessTable: "考核指标",
  rankTable: "下级排名",
  byPeriod: "近期各周期",
  byChild: "按下级辖区",
  undefinedRate: "无",
  subject: "考核对象",
  user: "用户",
  role: "角色",
  nodeSays: "节点答复：",
  httpError: "请求失败",
};

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  appTitle: "Command Centre",
  appSub: "Whistle · console",
  navTree: "Live tree",
  navDirectives: "Directives",
  navAssess: "Assessment",
  signinTitle: "Sign in to the console",
  signinToken: "Access token (JWT)",
  signinHint: "Paste the token issued to you. It is kept in this browser tab only.",
  signinSubmit: "Sign in",
  signinEmpty: "Paste a token",
  signinMalformed: "Not a JWT (three dot-separated parts expected)",
  sessionExpired: "Signed out: sign in again",
  nodeUnreachable: "Node unreachable",
  nodeUnreachableHint: "The console cannot reach its node right now; you are still signed in. Retrying every {s} s, or retry now.",
  nodeRefused: "The node refused the request",
  retryNow: "Retry now",
  retrying: "Retrying…",
  deptTitle: "This console is for leaders and staff of jurisdictions",
  deptText: "A department works from its inbox (cases it is summoned or dispatched to): whistlectl inbox summoned, or InboxService.DepartmentCases.",
  signout: "Sign out",
  modeScreen: "Big screen",
  modeDesk: "Desk",
  langOther: "中文",
  live: "live",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  offline: "offline",
  jurisdiction: "Jurisdiction",
  level: "Level",
  open: "Open",
  overdueNow: "Overdue now",
  noShows: "No-shows",
  status: "Status",
  unreachable: "Node unreachable",
  unreachableTitle: "The node hosting this jurisdiction cannot be reached; last known figures shown",
  expand: "Expand",
  collapse: "Collapse",
  treeCaption: "Open cases by state, overdue now and today's department no-shows per jurisdiction",
  todayReceived: "Reported today",
  todayResolved: "Resolved today",
  responseRate: "Response rate",
  resolutionRate: "On-time resolution",
  satisfactionRate: "Satisfaction",
  openByChild: "Open cases by child",
  rankTitle: "Response rate ranking (today)",
  loading: "Loading…",
  noData: "No data",
  error: "Error",
  retry: "Retry",
  cases: "Cases",
  caseId: "Case",
  category: "Category",
  severity: "Severity",
  state: "State",
  owner: "Owner",
  place: "Place",
  reportedAt: "Reported",
  nextDeadline: "Next deadline",
  overdue: "Overdue",
  allStates: "All states",
  filterState: "Filter by state",
  prevPage: "Previous",
  nextPage: "Next",
  page: "Page {n}",
  back: "Back",
  caseDetail: "Case",
  text: "Description",
  reporter: "Reporter",
  handler: "Handling department",
  deadlines: "Deadlines",
  acceptBy: "Accept by",
  dispatchBy: "Dispatch by",
  resolveBy: "Resolve by",
  verifyBy: "Verify by",
  evaluateBy: "Evaluate by",
  satisfaction: "Rating",
  supervisions: "Supervisions",
  escalations: "Escalations",
  readOnly: "Read-only copy (owner node: {node})",
  summons: "Whistle and report-in",
  department: "Department",
  summonedAt: "Summoned",
  reportInBy: "Report in by",
  reportedInAt: "Reported in",
  doneAt: "Done",
  noShow: "No-show",
  refused: "Refused",
  summonsAwaiting: "Awaiting report-in",
  summonsReported: "Reported in",
  summonsDone: "Done",
  noSummons: "No department summoned yet",
  noticeTo: "Supervision notice to",
  timeline: "History",
  who: "Who",
  when: "When",
  where: "Where",
  why: "Why",
  actions: "Actions",
  actionAccept: "Accept",
  actionWhistle: "Whistle",
  actionSupervise: "Supervise",
  actionSubmit: "Submit",
  actionCancel: "Cancel",
  note: "Note (reason or remark)",
  pickDepartments: "Departments to summon",
  noDepartments: "No departments at this level or above",
  actionDone: "Done",
  directives: "Directives",
  directiveNew: "Issue a directive",
  directiveTitle: "Title",
  directiveText: "Directive",
  directiveLevel: "Down to",
  directiveSubtree: "Subtree",
  directiveDeadline: "Deadline",
  directiveSubmit: "Issue",
  directiveIssued: "Issued to {n} units",
  directiveList: "Directives",
  issuedAt: "Issued",
  issuer: "Issuer",
  deadline: "Deadline",
  progress: "Progress",
  signed: "Signed",
  done: "Done",
  total: "Targets",
  overdueUnits: "Overdue",
  unsigned: "Not signed yet",
  unit: "Unit",
  receiptState: "State",
  noUnsigned: "All signed",
  cancelled: "Cancelled",
  active: "Active",
  assess: "Assessment",
  period: "Period",
  periodAt: "Date",
  periodDay: "Day",
  periodWeek: "Week",
  periodMonth: "Month",
  periodRange: "Range",
  from: "From",
  to: "To",
  apply: "Show",
  figure: "Figure",
  value: "Value",
  numerator: "Numerator",
  denominator: "Denominator",
  rank: "Rank",
  rankBy: "Rank by",
  exportCsv: "Export CSV",
  assessTable: "Figures",
  rankTable: "Children ranked",
  byPeriod: "Recent periods",
  byChild: "By child jurisdiction",
  undefinedRate: "n/a",
  subject: "Subject",
  user: "User",
  role: "Role",
  nodeSays: "The node says: ",
  httpError: "Request failed",
};

const LANG_KEY = "whistle.console.lang";

function initialLang(): Lang {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "en" || q === "zh") {
    try {
      localStorage.setItem(LANG_KEY, q);
    } catch {
      /* storage may be disabled */
    }
    return q;
  }
  try {
    const s = localStorage.getItem(LANG_KEY);
    if (s === "en" || s === "zh") return s;
  } catch {
    /* ignore */
  }
  return "zh";
}

let lang: Lang = initialLang();

export function getLang(): Lang {
  return lang;
}

export function setLang(l: Lang): void {
  lang = l;
  try {
    localStorage.setItem(LANG_KEY, l);
  } catch {
    /* ignore */
  }
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
}

export function t(key: Key, vars?: Record<string, string | number>): string {
  let s = (lang === "zh" ? zh : en)[key];
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
  return s;
}

// ---- Enum labels ----

export const OPEN_STATES = [
  "CASE_STATE_REPORTED",
  "CASE_STATE_ACCEPTED",
  "CASE_STATE_DISPATCHED",
  "CASE_STATE_IN_PROGRESS",
  "CASE_STATE_RESOLVED",
  "CASE_STATE_VERIFIED",
] as const;

export const ALL_STATES = [
  ...OPEN_STATES,
  "CASE_STATE_CLOSED",
  "CASE_STATE_EVALUATED",
  "CASE_STATE_REJECTED",
] as const;

const stateZh: Record<string, string> = {
  CASE_STATE_REPORTED: "待受理",
  CASE_STATE_ACCEPTED: "已受理",
  CASE_STATE_DISPATCHED: "已派遣",
  CASE_STATE_IN_PROGRESS: "处置中",
  CASE_STATE_RESOLVED: "已办结",
  CASE_STATE_VERIFIED: "已核查",
  CASE_STATE_CLOSED: "已结案",
  CASE_STATE_EVALUATED: "已评价",
  CASE_STATE_REJECTED: "不予受理",
};
const stateEn: Record<string, string> = {
  CASE_STATE_REPORTED: "Reported",
  CASE_STATE_ACCEPTED: "Accepted",
  CASE_STATE_DISPATCHED: "Dispatched",
  CASE_STATE_IN_PROGRESS: "In progress",
  CASE_STATE_RESOLVED: "Resolved",
  CASE_STATE_VERIFIED: "Verified",
  CASE_STATE_CLOSED: "Closed",
  CASE_STATE_EVALUATED: "Evaluated",
  CASE_STATE_REJECTED: "Rejected",
};

// "CASE_STATE_IN_PROGRESS" -> "in_progress" (the data-testid suffix).
export function stateShort(state: string): string {
  return state.replace(/^CASE_STATE_/, "").toLowerCase();
}

export function stateLabel(state: string | undefined): string {
  const s = state ?? "CASE_STATE_UNSPECIFIED";
  return (lang === "zh" ? stateZh : stateEn)[s] ?? s;
}

const kindZh: Record<string, string> = {
  REPORT: "上报",
  ACCEPT: "受理",
  DISPATCH: "派遣",
  KEEP: "自行处置",
  ESCALATE: "上报上级",
  WHISTLE: "吹哨",
  REPORT_IN: "报到",
  RESOLVE: "办结",
  VERIFY: "核查",
  CLOSE: "结案",
  EVALUATE: "评价",
  RETURN: "退回",
  REJECT: "不予受理",
  SUPERVISE: "督办",
  OVERDUE: "超期",
  TRANSFER: "分流",
  REFUSE: "退单",
};

export function kindLabel(kind: string | undefined): string {
  const k = (kind ?? "").replace(/^TRANSITION_KIND_/, "");
  if (lang === "zh") return kindZh[k] ?? k;
  return k.replace(/_/g, " ").toLowerCase().replace(/^./, (c) => c.toUpperCase());
}

const severityZh: Record<string, string> = {
  SEVERITY_GENERAL: "一般",
  SEVERITY_SERIOUS: "较大",
  SEVERITY_MAJOR: "重大",
  SEVERITY_EXTRAORDINARY: "特别重大",
};
const severityEn: Record<string, string> = {
  SEVERITY_GENERAL: "General",
  SEVERITY_SERIOUS: "Serious",
  SEVERITY_MAJOR: "Major",
  SEVERITY_EXTRAORDINARY: "Extraordinary",
};
export function severityLabel(s: string | undefined): string {
  if (!s) return "";
  return (lang === "zh" ? severityZh : severityEn)[s] ?? s;
}

export const LEVELS = ["LEVEL_CITY", "LEVEL_COUNTY", "LEVEL_TOWNSHIP", "LEVEL_COMMUNITY", "LEVEL_GRID"];
const levelZh: Record<string, string> = {
  LEVEL_CITY: "市",
  LEVEL_COUNTY: "县（区）",
  LEVEL_TOWNSHIP: "乡镇（街道）",
  LEVEL_COMMUNITY: "社区（村）",
  LEVEL_GRID: "网格",
};
const levelEn: Record<string, string> = {
  LEVEL_CITY: "City",
  LEVEL_COUNTY: "County",
  LEVEL_TOWNSHIP: "Township",
  LEVEL_COMMUNITY: "Community",
  LEVEL_GRID: "Grid",
};
export function levelLabel(l: string | undefined): string {
  if (!l) return "";
  return (lang === "zh" ? levelZh : levelEn)[l] ?? l;
}
// "every grid", "每个网格": for the directive target picker.
export function levelEvery(l: string): string {
  return lang === "zh" ? `所有${levelZh[l] ?? l}` : `every ${(levelEn[l] ?? l).toLowerCase()}`;
}

const roleZh: Record<string, string> = {
  grid_worker: "网格员",
  staff: "工作人员",
  department: "职能部门",
  leader: "领导",
  admin: "管理员",
  ROLE_GRID_WORKER: "网格员",
  ROLE_STAFF: "工作人员",
  ROLE_DEPARTMENT: "职能部门",
  ROLE_LEADER: "领导",
  ROLE_ADMIN: "管理员",
};
export function roleLabel(r: string | undefined): string {
  if (!r || r === "ROLE_UNSPECIFIED") return "";
  if (lang === "zh") return roleZh[r] ?? r;
  return r.replace(/^ROLE_/, "").replace(/_/g, " ").toLowerCase();
}

const receiptZh: Record<string, string> = {
  RECEIPT_STATE_PENDING: "待签收",
  RECEIPT_STATE_SIGNED: "已签收",
  RECEIPT_STATE_DONE: "已反馈",
};
export function receiptLabel(s: string | undefined): string {
  if (!s) return "";
  if (lang === "zh") return receiptZh[s] ?? s;
  return s.replace(/^RECEIPT_STATE_/, "").toLowerCase();
}

const categoryZh: Record<string, string> = {
  "dispute.neighbour": "邻里纠纷",
  "dispute.family": "家庭纠纷",
  "dispute.labour": "劳资纠纷",
  "dispute.land": "土地纠纷",
  public_order: "社会治安",
  "safety.fire": "消防安全隐患",
  "safety.gas": "燃气安全隐患",
  "safety.building": "房屋安全隐患",
  "safety.traffic": "交通安全隐患",
  environment: "市容环境",
  "infrastructure.road": "道路设施",
  "infrastructure.water": "供排水设施",
  "infrastructure.power": "供电设施",
  "infrastructure.street_light": "路灯设施",
  "livelihood.elderly": "养老服务",
  "livelihood.disabled": "助残服务",
  "livelihood.assistance": "社会救助",
  "special_population.correction": "社区矫正",
  "special_population.drug": "社区戒毒康复",
  "special_population.mental": "严重精神障碍患者服务管理",
  floating_population: "流动人口",
  rental_housing: "出租房屋",
  public_health: "公共卫生",
  petition: "信访",
  school: "校园及周边",
  enterprise: "企业",
  religion: "宗教场所",
  association: "社会组织",
};
export function categoryLabel(c: string | undefined): string {
  if (!c) return "";
  if (lang === "zh") return categoryZh[c] ?? c;
  return c.replace(/[._]/g, " ");
}

// Assessment figure names (docs/assessment.md) -> labels.
const figureZh: Record<string, string> = {
  received: "上报量",
  recurrences: "重复上报",
  responded: "已响应",
  responded_in_time: "按时响应",
  responses_missed: "受理超时",
  resolved: "办结",
  resolved_in_time: "按期办结",
  resolutions_missed: "办结超时",
  closed: "结案",
  closed_in_time: "按期结案",
  local_closed: "乡镇内结案（应）",
  kept_local: "不出乡镇办结",
  evaluated: "群众评价",
  satisfied: "满意评价",
  score_sum: "评价总分",
  evaluated_on_behalf: "代评价",
  on_behalf_score_sum: "代评价总分",
  evaluation_expired: "评价过期",
  escalations_out: "上报上级",
  returns: "退回/退单",
  reopened: "核查未通过",
  no_shows: "吹哨未报到",
  overdue_now: "当前超期",
  summoned: "被吹哨/派遣",
  reported_in: "报到",
  reported_in_on_time: "按时报到",
  refusals: "退单",
  parts_done: "完成处置",
  response_rate: "及时受理率",
  resolution_rate: "按期办结率",
  satisfaction_rate: "满意率",
  satisfaction_mean: "平均评分",
  on_behalf_mean: "代评价平均分",
  closure_rate: "按期结案率",
  kept_local_share: "不出乡镇率",
  report_in_rate: "按时报到率",
};
export function figureLabel(name: string): string {
  if (lang === "zh") return figureZh[name] ?? name;
  return name.replace(/_/g, " ");
}
export const RANK_FIGURES = [
  "response_rate",
  "resolution_rate",
  "satisfaction_rate",
  "closure_rate",
  "kept_local_share",
  "received",
  "overdue_now",
  "no_shows",
  "escalations_out",
  "returns",
];

const deadlineZh: Record<string, string> = {
  accept: "受理时限",
  dispatch: "派遣时限",
  resolve: "办结时限",
  verify: "核查时限",
  evaluate: "评价时限",
  report_in: "报到时限",
};
export function deadlineLabel(d: string): string {
  if (lang === "zh") return deadlineZh[d] ?? d;
  return `${d.replace(/_/g, " ")} deadline`;
}
