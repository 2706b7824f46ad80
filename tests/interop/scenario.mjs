// Plays the scenario against real whistled processes with a client
// built only from the .proto files (Node.js, @grpc/grpc-js), SIGKILLs the node
// in the middle, restarts it, and compares the case history with what every
// call returned. Callers present ES256 tokens signed here with node:crypto
// (the node verifies them against a JWKS written here), as any issuer would.
// Usage: node scenario.mjs PATH/TO/whistled PROTO_ROOT
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [whistledPath, protoRoot] = process.argv.slice(2);
const def = protoLoader.loadSync('whistle/v1/service.proto', {
  includeDirs: [protoRoot], keepCase: true, enums: String, longs: Number, defaults: true,
});
const v1 = grpc.loadPackageDefinition(def).whistle.v1;

const freePort = () => new Promise((resolve) => {
  const srv = createServer().listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    srv.close(() => resolve(port));
  });
});

// The issuer: an EC P-256 key pair; the node gets its public half as a JWKS.
const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KID = 'interop';
function writeJwks(path) {
  const jwk = issuer.publicKey.export({ format: 'jwk' });
  writeFileSync(path, JSON.stringify({ keys: [{ ...jwk, kid: KID, alg: 'ES256', use: 'sig' }] }));
}

// A JWT (RFC 7519) signed ES256: the signature is r||s (JWS), not DER.
function token(claims) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: KID })}.${b64({ ...claims, iat: now, exp: now + 600 })}`;
  const signature = sign('sha256', Buffer.from(input), { key: issuer.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

async function startNode(dataDir, port) {
  const jwks = `${dataDir}.jwks.json`;
  writeJwks(jwks);
  const child = spawn(whistledPath, ['--listen', `127.0.0.1:${port}`, '--metrics-listen', '',
    '--data-dir', dataDir, '--jwks-file', jwks], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const topo = new v1.TopologyService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  for (let i = 0; i < 200; i++) {
    try {
      await call(topo, 'GetJurisdiction', { id: '' }, who('probe', 'leader', 'szs'));
      return { child, port };
    } catch (e) {
      if (child.exitCode !== null) throw new Error(`whistled exited: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`whistled did not start: ${log}`);
}

function who(user, role, jurisdiction, department) {
  const md = new grpc.Metadata();
  const claims = { sub: user, role };
  if (jurisdiction) claims.jurisdiction = jurisdiction;
  if (department) claims.department = department;
  md.set('authorization', `Bearer ${token(claims)}`);
  return md;
}

function call(client, method, request, md) {
  return new Promise((resolve, reject) => {
    client[method](request, md, { deadline: Date.now() + 10000 }, (err, resp) =>
      (err ? reject(err) : resolve(resp)));
  });
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'whistle-interop-'));
  let node;
  try {
    node = await startNode(join(dataDir, 'db'), await freePort());
    const addr = () => `127.0.0.1:${node.port}`;
    let cases = new v1.CaseService(addr(), grpc.credentials.createInsecure());
    const topo = new v1.TopologyService(addr(), grpc.credentials.createInsecure());

    // Discover the ids from the topology service, as a client would.
    const leader = who('leader', 'leader', 'szs');
    const dwk = await call(topo, 'GetJurisdiction', { id: 'dwk' }, leader);
    const street = dwk.children[0].id;
    const streetView = await call(topo, 'GetJurisdiction', { id: street }, leader);
    const community = streetView.children[0].id;
    const grid = (await call(topo, 'GetJurisdiction', { id: community }, leader)).children[0].id;
    const dept = (kind) => streetView.departments.find((d) => d.kind === kind).id;
    const police = dept('police_station');
    const judicial = dept('judicial_office');

    const gridWorker = who('wang', 'grid_worker', grid);
    const communityStaff = who('li', 'staff', community);
    const streetStaff = who('zhao', 'staff', street);
    const policeDesk = who('desk-p', 'department', '', police);
    const judicialDesk = who('desk-j', 'department', '', judicial);

    const returned = [];
    const created = await call(cases, 'Report', { report: {
      request_id: 'interop-1', category: 'dispute.neighbour', severity: 'SEVERITY_GENERAL',
      place: { grid_id: grid, address: '3号楼' }, text: '邻里纠纷' } }, gridWorker);
    assert.equal(created.state, 'CASE_STATE_REPORTED');
    assert.equal(created.owner_id, community);
    returned.push(created);
    const id = created.id;
    const act = async (md, command) => {
      const c = await call(cases, 'Act', { case_id: id, command }, md);
      returned.push(c);
      return c;
    };
    const steps = [
      [communityStaff, { accept: { note: '受理' } }, 'CASE_STATE_ACCEPTED'],
      [communityStaff, { escalate: { reason: '调解未果' } }, 'CASE_STATE_ACCEPTED'],
      [streetStaff, { whistle: { department_ids: [police, judicial] } }, 'CASE_STATE_IN_PROGRESS'],
      [policeDesk, { report_in: {} }, 'CASE_STATE_IN_PROGRESS'],
      'KILL',
      [judicialDesk, { report_in: {} }, 'CASE_STATE_IN_PROGRESS'],
      [policeDesk, { resolve: {} }, 'CASE_STATE_IN_PROGRESS'],
      [judicialDesk, { resolve: {} }, 'CASE_STATE_RESOLVED'],
      [gridWorker, { verify: { fixed: true } }, 'CASE_STATE_VERIFIED'],
      [streetStaff, { close: {} }, 'CASE_STATE_CLOSED'],
      [gridWorker, { evaluate: { score: 5 } }, 'CASE_STATE_EVALUATED'],
    ];
    for (const step of steps) {
      if (step === 'KILL') {
        node.child.kill('SIGKILL');
        await new Promise((r) => node.child.once('exit', r));
        cases.close();
        node = await startNode(join(dataDir, 'db'), await freePort());
        cases = new v1.CaseService(addr(), grpc.credentials.createInsecure());
        const after = await call(cases, 'Get', { case_id: id }, gridWorker);
        assert.deepEqual(after, returned.at(-1), 'state after SIGKILL = last acknowledged answer');
        continue;
      }
      const [md, command, state] = step;
      const c = await act(md, command);
      assert.equal(c.state, state, JSON.stringify(command));
    }

    const { entries } = await call(cases, 'History', { case_id: id }, gridWorker);
    assert.equal(entries.length, returned.length);
    entries.forEach((e, i) => {
      const c = returned[i];
      assert.equal(e.seq, i + 1);
      assert.equal(e.to_state, c.state, `entry ${i + 1} state`);
      assert.equal(e.jurisdiction_id, c.owner_id, `entry ${i + 1} jurisdiction`);
      assert.equal(e.at_ms, c.updated_at_ms, `entry ${i + 1} time`);
      assert.equal(c.history_length, i + 1);
    });
    assert.equal(entries[2].kind, 'TRANSITION_KIND_ESCALATE');
    assert.equal(entries[2].from_jurisdiction_id, community);
    assert.equal(returned.at(-1).satisfaction, 5);

    // Bad input changes nothing and names the field.
    await assert.rejects(call(cases, 'Act', { case_id: id, command: { evaluate: { score: 9 } } },
      gridWorker), (e) => e.code === grpc.status.INVALID_ARGUMENT &&
      e.details.includes('command.evaluate.score'));
    console.log(`interop: ${entries.length} history entries match ${returned.length} answers`);
  } finally {
    if (node && node.child.exitCode === null) node.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
