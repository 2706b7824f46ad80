// The browser tests' harness: a real local federation (app/federation.sh, county split:
// the city node and one node per county, free ports on 127.0.0.1), the leaders' console
// gateway (whistle-console) in front of the city's node, tokens from the federation's own
// issuer (whistlectl token mint), whistlectl for the API side, and Debian's Chromium driven
// by playwright-core. Everything it starts it stops: stop() from the tests' after() hook,
// and again from a process exit/signal handler if the tests die first.
//
// Environment:
//   WHISTLE_BUILD               the build dir with app/whistled, cli/whistlectl (default ROOT/build)
//   WHISTLE_CONSOLE_BIN         whistle-console (default: found under WHISTLE_BUILD)
//   WHISTLE_CONSOLE_ASSETS      the built page (default ROOT/app/console/web/dist)
//   WHISTLE_CONSOLE_ARTIFACTS   screenshots and reports (default WHISTLE_BUILD/console-artifacts)
//   WHISTLE_CONSOLE_TMP         scratch dir (default a new /tmp/whistle-console-test-*)
//   CHROMIUM                    the browser (default /usr/bin/chromium)
import { execFile, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const BUILD = path.resolve(process.env.WHISTLE_BUILD || path.join(ROOT, 'build'));
export const ASSETS = path.resolve(
  process.env.WHISTLE_CONSOLE_ASSETS || path.join(ROOT, 'app/console/web/dist'));
export const ARTIFACTS = path.resolve(
  process.env.WHISTLE_CONSOLE_ARTIFACTS || path.join(BUILD, 'console-artifacts'));
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FEDERATION = path.join(ROOT, 'app/federation.sh');
const WHISTLECTL = path.join(BUILD, 'cli/whistlectl');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function findConsoleBin() {
  if (process.env.WHISTLE_CONSOLE_BIN) return path.resolve(process.env.WHISTLE_CONSOLE_BIN);
  for (const p of ['app/whistle-console', 'app/console/whistle-console', 'whistle-console']) {
    const full = path.join(BUILD, p);
    if (fs.existsSync(full)) return full;
  }
  throw new Error(`whistle-console not found under ${BUILD} (build it: cmake --build ${BUILD} ` +
                  '--target whistle-console, or set WHISTLE_CONSOLE_BIN)');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(file, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

// Polls fn until it returns a truthy value (returned) or throws the last failure at timeout.
export async function until(fn, { timeout = 5000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
                      (last ? `: ${last.message}` : ''));
    }
    await sleep(interval);
  }
}

// The first integer in an element's text ("1,234", "上报 3" -> 3); NaN when none.
export function numberIn(text) {
  const m = /-?\d[\d,]*/.exec(text ?? '');
  return m ? Number(m[0].replace(/,/g, '')) : NaN;
}

// proto3 JSON (either field-name style) -> { reported: 3, accepted: 1, ... } by short state.
export function countsByState(json) {
  const out = {};
  for (const c of json.counts ?? []) {
    const state = String(c.state).replace(/^CASE_STATE_/, '').toLowerCase();
    out[state] = (out[state] ?? 0) + Number(c.count ?? 0);
  }
  return out;
}
export const OPEN_STATES = ['reported', 'accepted', 'dispatched', 'in_progress', 'resolved',
  'verified'];
export const openTotal = (byState) => OPEN_STATES.reduce((s, k) => s + (byState[k] ?? 0), 0);

export class Env {
  constructor() {
    this.ownTmp = !process.env.WHISTLE_CONSOLE_TMP;  // made here: removed by stop()
    this.tmp = process.env.WHISTLE_CONSOLE_TMP ||
      fs.mkdtempSync(path.join(os.tmpdir(), 'whistle-console-test-'));
    fs.mkdirSync(this.tmp, { recursive: true });
    this.fedDir = path.join(this.tmp, 'federation');
    this.consoleLog = path.join(this.tmp, 'whistle-console.log');
    this.nodes = {};
    this.stopped = false;
    this.onExit = () => this.stopSync();
  }

  async start() {
    for (const f of [WHISTLECTL, path.join(BUILD, 'app/whistled')]) {
      if (!fs.existsSync(f)) throw new Error(`${f} is missing: build it first`);
    }
    if (!fs.existsSync(path.join(ASSETS, 'index.html'))) {
      throw new Error(`${ASSETS}/index.html is missing: cd app/console/web && npm ci && npm run build`);
    }
    const consoleBin = findConsoleBin();
    process.once('exit', this.onExit);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(sig, () => { this.stopSync(); process.exit(128 + os.constants.signals[sig]); });
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });

    const fed = await run('bash', [FEDERATION, 'start', '--split', 'county', '--base-port', 'auto',
      '--dir', this.fedDir, '--build', BUILD]);
    if (fed.code !== 0) throw new Error(`federation.sh start failed:\n${fed.stdout}${fed.stderr}`);
    const tsv = fs.readFileSync(path.join(this.fedDir, 'nodes.tsv'), 'utf8').trim().split('\n');
    const head = tsv[0].split('\t');
    for (const line of tsv.slice(1)) {
      const row = Object.fromEntries(line.split('\t').map((v, i) => [head[i], v]));
      this.nodes[row.name] = row;
    }
    this.issuerKey = path.join(this.fedDir, 'issuer/private.pem');

    const port = await freePort();
    this.consoleUrl = `http://127.0.0.1:${port}`;
    const log = fs.openSync(this.consoleLog, 'a');
    this.console = spawn(consoleBin, ['--node', this.nodes.szs.listen, '--assets', ASSETS,
      '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    fs.writeFileSync(path.join(this.tmp, 'console.pid'), String(this.console.pid));
    this.consoleExit = null;
    this.console.on('exit', (code, sig) => { this.consoleExit = { code, sig }; });
    await until(async () => {
      if (this.consoleExit) {
        throw new Error(`whistle-console exited (${JSON.stringify(this.consoleExit)}):\n` +
                        fs.readFileSync(this.consoleLog, 'utf8'));
      }
      const r = await fetch(`${this.consoleUrl}/readyz`).catch(() => null);
      return r && r.status === 200;
    }, { timeout: 15000, interval: 100, what: `${this.consoleUrl}/readyz` });
    return this;
  }

  // Kill the gateway and stop the federation (idempotent; also from the exit handler).
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    if (this.console && !this.consoleExit) {
      this.console.kill('SIGTERM');
      await until(() => this.consoleExit, { timeout: 5000, what: 'whistle-console to exit' })
        .catch(() => this.console.kill('SIGKILL'));
    }
    await run('bash', [FEDERATION, 'stop', '--dir', this.fedDir]);
    process.removeListener('exit', this.onExit);
    if (this.ownTmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  stopSync() {
    if (this.stopped) return;
    this.stopped = true;
    try { if (this.console && !this.consoleExit) this.console.kill('SIGKILL'); } catch {}
    spawnSync('bash', [FEDERATION, 'stop', '--dir', this.fedDir], { stdio: 'ignore' });
    if (this.ownTmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  // The node hosting a jurisdiction: the county split puts each county's subtree on its node.
  nodeOf(jurisdiction) {
    const county = jurisdiction.split('-')[0];
    return (this.nodes[county] ?? this.nodes.szs).listen;
  }

  async federation(...args) {
    const r = await run('bash', [FEDERATION, ...args, '--dir', this.fedDir]);
    if (r.code !== 0) throw new Error(`federation.sh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async mint({ user, role, jurisdiction, department, ttl = '1h' }) {
    const args = ['token', 'mint', '--key-file', this.issuerKey, '--kid', 'federation',
      '--user', user, '--role', role, '--ttl', ttl];
    if (jurisdiction) args.push('--jurisdiction', jurisdiction);
    if (department) args.push('--department', department);
    const r = await run(WHISTLECTL, args);
    if (r.code !== 0) throw new Error(`token mint: ${r.stderr}`);
    return r.stdout.trim();
  }

  // A token signed by the federation's issuer like `token mint` but with exp and iat in the
  // past (beyond the nodes' 60 s leeway): what a session holds after its token ran out.
  async mintExpired(claims) {
    const good = await this.mint(claims);
    const [h, p] = good.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const now = Math.floor(Date.now() / 1000);
    payload.iat = now - 7200;
    if ('nbf' in payload) payload.nbf = now - 7200;
    payload.exp = now - 3600;
    const body = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const key = crypto.createPrivateKey(fs.readFileSync(this.issuerKey));
    const sig = crypto.sign('sha256', Buffer.from(body), { key, dsaEncoding: 'ieee-p1363' });
    return `${body}.${sig.toString('base64url')}`;
  }

  // whistlectl against a node as the token's holder; JSON output parsed when it is JSON.
  async ctl(token, server, ...args) {
    const r = await run(WHISTLECTL, ['--server', server, '--json', ...args],
      { env: { ...process.env, WHISTLE_TOKEN: token } });
    try { r.json = JSON.parse(r.stdout); } catch { r.json = undefined; }
    return r;
  }
  async ctlOk(token, server, ...args) {
    const r = await this.ctl(token, server, ...args);
    if (r.code !== 0) throw new Error(`whistlectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r;
  }

  // The gateway's JSON API, as the page calls it.
  async api(token, service, method, body = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(`${this.consoleUrl}/api/rpc/${service}/${method}`,
      { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text };
  }
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking'],
  });
}
