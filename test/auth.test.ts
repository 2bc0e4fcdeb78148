// Who may call soccrd (issue 5), on real daemons: the Unix socket's mode and group, callers allowed or
// refused by their credentials (a client run as uid 65534), TCP only with mTLS (certificates made with
// openssl here) and an allowlist of certificate identities, and the refusals at start of TCP without
// TLS. The authorizer's pure parts (SAN parsing, loopback check, UNAUTHENTICATED) are checked directly.
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient, isServiceError } from '../client/client';
import { ConnectionRegistry, isLoopback, makeAuthorizer, parseSubjectAltName } from '../daemon/server/auth';
import { SoccrError } from '../protocol/errors';
import type { AuthorizableCall } from '../daemon/server/calls';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { Pki, tlsClient } from './support/pki';
import { callAsNobody, nobodyCaller } from './support/nobody-caller';
import { NOBODY } from './support/other-user';

const SOCCRCTL = join(__dirname, '..', 'client', 'soccrctl.js');

/** The code a call ends with: 'OK' or the status name. */
async function codeOf(p: Promise<unknown>): Promise<{ code: string; err?: grpc.ServiceError }> {
  try {
    await p;
    return { code: 'OK' };
  } catch (err) {
    assert.ok(isServiceError(err), `not a gRPC status: ${String(err)}`);
    return { code: grpc.status[err.code], err };
  }
}

/** A daemon's socket directory made traversable by other users (mkdtemp makes it 0700). */
function reachable(d: DaemonProcess): DaemonProcess {
  chmodSync(d.dir, 0o711);
  return d;
}

/** The TCP address a daemon bound (port 0 resolved), from its daemon.json. */
/**
 * The TCP address the daemon bound, from its daemon.json. The daemon writes that file once every listener
 * is bound, which can be a moment after its Unix socket already answers: wait for it, bounded.
 */
async function boundTcp(d: DaemonProcess): Promise<string> {
  const file = join(d.dir, 'state', 'daemon.json');
  const read = (): { bound?: string[] } | undefined => {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as { bound?: string[] };
    } catch {
      return undefined; // not written yet, or being written
    }
  };
  const deadline = Date.now() + 10_000;
  let info = read();
  while (!info && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    info = read();
  }
  assert.ok(info, `${file} never appeared`);
  const tcp = (info.bound ?? []).find((a) => !a.startsWith('unix:'));
  assert.ok(tcp, `no TCP address in daemon.json: ${JSON.stringify(info)}`);
  assert.doesNotMatch(tcp, /:0$/, 'the bound port, not 0');
  return tcp;
}

async function expectRefusedAtStart(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(DaemonProcess.start(args), (err: Error) => {
    assert.match(err.message, /exited at start/);
    assert.match(err.message, message);
    return true;
  });
}

function soccrctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SOCCRCTL, ...args], { timeout: 30_000, env: { ...process.env, SOCCRD_ADDRESS: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// ---- tests ----------------------------------------------------------------------------------------

describe('who may call soccrd', function () {
  this.timeout(60_000);
  let tmp: string;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'soccrt-auth-'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await cleanupDaemons();
  });

  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('Unix socket', function () {
    it('by default: mode 0600, owned by root, root may call', async () => {
      const d = await DaemonProcess.start();
      const st = statSync(d.socketPath);
      assert.ok(st.isSocket());
      assert.equal((st.mode & 0o777).toString(8), '600');
      assert.equal(st.uid, 0);
      assert.equal(st.gid, 0);
      const client = new SoccrClient(d.address);
      try {
        assert.match((await client.getVersion()).version, /^\d+\.\d+\.\d+/);
        assert.ok(Array.isArray(await client.listSockets(process.pid)));
      } finally {
        client.close();
      }
      assert.match(d.output, /"caller":"uid=0 gid=0 pid=\d+"/, 'the log names the caller');
    });

    it('--socket-group: mode 0660 and that group; a caller outside the allowlist gets PERMISSION_DENIED, root is allowed', async function () {
      const caller = nobodyCaller(this);
      const d = reachable(await DaemonProcess.start(['--socket-group', 'nogroup']));
      const st = statSync(d.socketPath);
      assert.equal((st.mode & 0o777).toString(8), '660');
      assert.equal(st.gid, NOBODY);

      const r = await callAsNobody(caller, d.address);
      assert.equal(r.uid, NOBODY);
      for (const call of [r.GetVersion, r.ListSockets]) {
        assert.equal(call.code, 'PERMISSION_DENIED', JSON.stringify(call));
        assert.equal(call.kind, 'FORBIDDEN');
        assert.match(call.details ?? '', /uid 65534/);
      }
      const client = new SoccrClient(d.address);
      try {
        assert.equal((await codeOf(client.getVersion())).code, 'OK');
      } finally {
        client.close();
      }
    });

    it('--allow-uid 65534: that uid may call, and root still may', async function () {
      const caller = nobodyCaller(this);
      const d = reachable(await DaemonProcess.start(['--socket-group', 'nogroup', '--allow-uid', String(NOBODY)]));
      const r = await callAsNobody(caller, d.address);
      assert.equal(r.GetVersion.code, 'OK', JSON.stringify(r.GetVersion));
      assert.equal(r.ListSockets.code, 'OK', JSON.stringify(r.ListSockets));
      assert.match(d.output, /"caller":"uid=65534 gid=65534 pid=\d+"/);
      const client = new SoccrClient(d.address);
      try {
        assert.equal((await codeOf(client.getVersion())).code, 'OK');
      } finally {
        client.close();
      }
    });

    it("--allow-gid: the caller's primary group or a supplementary one (SO_PEERGROUPS) admits it", async function () {
      const caller = nobodyCaller(this);
      const d = reachable(await DaemonProcess.start(['--socket-group', 'nogroup', '--allow-gid', '4242', '--allow-uid', '1234']));
      const outside = await callAsNobody(caller, d.address);
      assert.equal(outside.GetVersion.code, 'PERMISSION_DENIED', 'uid and gid 65534: neither allowed');
      if (spawnSync('setpriv', ['--version']).status !== 0) this.skip();
      // (the socket's group, nogroup, lets each of them connect)
      const primary = await callAsNobody(caller, d.address, ['setpriv', `--reuid=${NOBODY}`, '--regid=4242', `--groups=${NOBODY}`]);
      assert.equal(primary.GetVersion.code, 'OK', `primary gid 4242: ${JSON.stringify(primary.GetVersion)}`);
      const supplementary = await callAsNobody(caller, d.address, ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--groups=4242']);
      assert.equal(supplementary.GetVersion.code, 'OK', `supplementary group 4242: ${JSON.stringify(supplementary.GetVersion)}`);
      // More groups than the daemon's first buffer holds (SO_PEERGROUPS answers ERANGE, then the rest).
      const many = [...Array.from({ length: 150 }, (_, i) => 5000 + i), 4242].join(',');
      const last = await callAsNobody(caller, d.address, ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, `--groups=${many}`]);
      assert.equal(last.GetVersion.code, 'OK', `151 groups, 4242 the last: ${JSON.stringify(last.GetVersion)}`);
    });

    it('the same settings from the --config file', async function () {
      const caller = nobodyCaller(this);
      const config = join(tmp, 'unix.json');
      writeFileSync(config, JSON.stringify({ socketGroup: 'nogroup', allowUids: [NOBODY] }));
      const d = reachable(await DaemonProcess.start(['--config', config]));
      assert.equal((statSync(d.socketPath).mode & 0o777).toString(8), '660');
      assert.equal((await callAsNobody(caller, d.address)).GetVersion.code, 'OK');
    });
  });

  describe('TCP', function () {
    let pki: Pki;
    let serverArgs: string[];

    before(function () {
      this.timeout(30_000);
      pki = new Pki(mkdtempSync(join(tmp, 'pki-')));
      pki.ca('ca');
      pki.ca('otherca');
      pki.leaf('ca', 'server', 'soccrd.test', ['subjectAltName=DNS:soccrd.test,IP:127.0.0.1', 'extendedKeyUsage=serverAuth']);
      pki.leaf('ca', 'operator', 'operator', ['extendedKeyUsage=clientAuth']);
      pki.leaf('ca', 'robot', 'robot-7', ['subjectAltName=URI:spiffe://soccrt/robot,DNS:robot.soccrt', 'extendedKeyUsage=clientAuth']);
      pki.leaf('ca', 'intruder', 'intruder', ['subjectAltName=DNS:intruder.soccrt', 'extendedKeyUsage=clientAuth']);
      // The allowed name, but signed by a CA the daemon does not trust.
      pki.leaf('otherca', 'forged', 'operator', ['extendedKeyUsage=clientAuth']);
      serverArgs = ['--tls-cert', pki.path('server', 'crt'), '--tls-key', pki.path('server', 'key'), '--tls-client-ca', pki.path('ca', 'crt')];
    });

    it('mTLS: an allowed certificate (by CN or by SAN) may call; one outside the allowlist gets PERMISSION_DENIED; none or a foreign CA cannot call', async () => {
      // operator: an admin identity (allowed, and not narrowed by the per-identity policy); robot: allowed,
      // with the built-in policy of a non-admin TLS identity (no process to list or checkpoint).
      const d = await DaemonProcess.start([
        '--listen',
        '127.0.0.1:0',
        ...serverArgs,
        '--admin-identity',
        'operator',
        '--allow-identity',
        'spiffe://soccrt/robot',
      ]);
      const addr = await boundTcp(d);
      assert.ok(
        d.output.split('\n').some((l) => l.includes('"message":"listening"') && new RegExp(`"bound":"${addr.replace(/\./g, '\\.')}"`).test(l)),
        'the log says where it listens',
      );
      const clients: SoccrClient[] = [];
      const client = (files: Parameters<typeof tlsClient>[1]): SoccrClient => {
        const c = tlsClient(addr, files);
        clients.push(c);
        return c;
      };
      try {
        // CN match
        const op = client(pki.client('operator'));
        assert.match((await op.getVersion()).version, /^\d+\.\d+\.\d+/);
        assert.ok(Array.isArray(await op.listSockets(process.pid)));
        assert.match(d.output, /"caller":"cert operator from 127\.0\.0\.1:\d+"/);
        // SAN match, and the daemon's name checked against another name it carries
        const robot = client({ ...pki.client('robot'), serverName: 'soccrd.test' });
        assert.equal((await codeOf(robot.getVersion())).code, 'OK');
        assert.equal((await codeOf(robot.listSockets(process.pid))).code, 'PERMISSION_DENIED', 'a non-admin TLS identity lists no process by default');

        // A verified certificate whose identity is not allowed.
        const intruder = client(pki.client('intruder'));
        for (const p of [intruder.getVersion(), intruder.listSockets(process.pid)]) {
          const r = await codeOf(p);
          assert.equal(r.code, 'PERMISSION_DENIED', r.err?.details);
          assert.match(r.err?.details ?? '', /intruder/);
          assert.equal(String(r.err?.metadata.get('soccr-kind')[0]), 'FORBIDDEN');
        }

        // No client certificate, a certificate from another CA, and no TLS at all: no call gets through.
        const plaintext = new SoccrClient(addr, { timeoutMs: 10_000 });
        clients.push(plaintext);
        for (const [what, c] of [
          ['no client certificate', client(pki.client('operator', { cert: false }))],
          ['another CA', client(pki.client('forged'))],
          ['plaintext', plaintext],
        ] as const) {
          const r = await codeOf(c.getVersion());
          assert.equal(r.code, 'UNAVAILABLE', `${what}: ${r.code} ${r.err?.details ?? ''}`);
        }
      } finally {
        for (const c of clients) c.close();
      }

      // soccrctl with --tls-* (and the daemon's name), and without a client certificate.
      const tlsArgs = ['--tls-ca', pki.path('ca', 'crt'), '--tls-cert', pki.path('operator', 'crt'), '--tls-key', pki.path('operator', 'key')];
      const ok = await soccrctl(['--daemon', addr, ...tlsArgs, '--tls-server-name', 'soccrd.test', '--json', 'version']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match((JSON.parse(ok.stdout) as { daemon: string }).daemon, /^\d+\.\d+\.\d+/);
      const sockets = await soccrctl(['--daemon', addr, ...tlsArgs, '--json', 'sockets', '--pid', String(process.pid)]);
      assert.equal(sockets.code, 0, sockets.stderr);
      const denied = await soccrctl([
        '--daemon',
        addr,
        '--tls-ca',
        pki.path('ca', 'crt'),
        '--tls-cert',
        pki.path('intruder', 'crt'),
        '--tls-key',
        pki.path('intruder', 'key'),
        'version',
      ]);
      assert.equal(denied.code, 71, 'PERMISSION_DENIED: 64 + 7');
      assert.match(denied.stderr, /^soccrctl: PERMISSION_DENIED: /);
      const wrongName = await soccrctl(['--daemon', addr, ...tlsArgs, '--tls-server-name', 'elsewhere.test', 'version']);
      assert.equal(wrongName.code, 78, 'a daemon certificate without the expected name is refused: UNAVAILABLE, 64 + 14');
      assert.match(wrongName.stderr, /^soccrctl: UNAVAILABLE: /);
    });

    it("--allow-identity '*': any certificate the client CA signed", async () => {
      const d = await DaemonProcess.start(['--listen', '127.0.0.1:0', ...serverArgs, '--allow-identity', '*']);
      const c = tlsClient(await boundTcp(d), pki.client('intruder'));
      try {
        assert.equal((await codeOf(c.getVersion())).code, 'OK');
      } finally {
        c.close();
      }
    });

    it('TLS settings from the --config file', async () => {
      const config = join(tmp, 'tls.json');
      writeFileSync(
        config,
        JSON.stringify({
          tlsCert: pki.path('server', 'crt'),
          tlsKey: pki.path('server', 'key'),
          tlsClientCa: pki.path('ca', 'crt'),
          allowIdentities: ['robot.soccrt'],
        }),
      );
      const d = await DaemonProcess.start(['--config', config, '--listen', '127.0.0.1:0']);
      const addr = await boundTcp(d);
      const robot = tlsClient(addr, pki.client('robot'));
      const op = tlsClient(addr, pki.client('operator'));
      try {
        assert.equal((await codeOf(robot.getVersion())).code, 'OK');
        assert.equal((await codeOf(op.getVersion())).code, 'PERMISSION_DENIED');
      } finally {
        robot.close();
        op.close();
      }
    });

    it('refuses TCP without TLS unless --insecure, and --insecure off loopback; a TLS listener needs an allowlist', async () => {
      await expectRefusedAtStart(['--listen', '127.0.0.1:0'], /TCP needs TLS with client certificates/);
      await expectRefusedAtStart(['--listen', '0.0.0.0:0', '--insecure'], /--insecure only on a loopback address/);
      await expectRefusedAtStart(['--listen', '[::]:0', '--insecure'], /--insecure only on a loopback address/);
      await expectRefusedAtStart(['--listen', '127.0.0.1:0', ...serverArgs], /needs --allow-identity/);
      await expectRefusedAtStart(['--listen', '127.0.0.1:0', '--tls-cert', pki.path('server', 'crt'), '--allow-identity', 'x'], /TLS needs all of/);
      await cleanupDaemons();

      // --insecure on loopback: plain TCP, and the daemon says so.
      const d = await DaemonProcess.start(['--listen', '127.0.0.1:0', '--insecure']);
      const addr = await boundTcp(d);
      assert.match(d.output, /listening on TCP without TLS/);
      const c = new SoccrClient(addr, { timeoutMs: 10_000 });
      try {
        assert.equal((await codeOf(c.getVersion())).code, 'OK');
        assert.match(d.output, /"caller":"insecure 127\.0\.0\.1:\d+"/);
      } finally {
        c.close();
      }
    });
  });

  describe('the authorizer', function () {
    const fakeCall = (peer: string, auth: ReturnType<AuthorizableCall['getAuthContext']> = {}): AuthorizableCall => ({
      getPeer: () => peer,
      getAuthContext: () => auth,
      metadata: new grpc.Metadata(),
    });
    const policy = { allowUids: [1000], allowGids: [50], allowIdentities: ['operator'] };

    const kindOf = (fn: () => unknown): string => {
      try {
        fn();
        return 'ALLOWED';
      } catch (err) {
        assert.ok(err instanceof SoccrError, String(err));
        return err.kind;
      }
    };

    it('UNAUTHENTICATED without an identity; FORBIDDEN outside the allowlist; never by a peer string alone', () => {
      const registry = new ConnectionRegistry();
      const authorize = makeAuthorizer(policy, registry);
      const sock = (): { once: (e: 'close', l: () => void) => void; close: () => void } => {
        let onClose: (() => void) | undefined;
        return { once: (_e, l) => (onClose = l), close: () => onClose?.() };
      };
      const unknown = sock();
      const unknownPeer = registry.tag(unknown, { transport: 'unix' });
      assert.equal(
        kindOf(() => authorize(fakeCall(unknownPeer), 'GetVersion')),
        'UNAUTHENTICATED',
      );
      const alice = sock();
      const alicePeer = registry.tag(alice, { transport: 'unix', cred: { pid: 1, uid: 1000, gid: 1000, groups: [] } });
      assert.equal(
        kindOf(() => authorize(fakeCall(alicePeer), 'GetVersion')),
        'ALLOWED',
      );
      const bob = registry.tag(sock(), { transport: 'unix', cred: { pid: 2, uid: 1001, gid: 1001, groups: [50] } });
      assert.equal(
        kindOf(() => authorize(fakeCall(bob), 'GetVersion')),
        'ALLOWED',
        'by supplementary group',
      );
      const eve = registry.tag(sock(), { transport: 'unix', cred: { pid: 3, uid: 1002, gid: 1002, groups: [1002] } });
      assert.equal(
        kindOf(() => authorize(fakeCall(eve), 'GetVersion')),
        'FORBIDDEN',
      );
      const root = registry.tag(sock(), { transport: 'unix', cred: { pid: 4, uid: 0, gid: 0, groups: [] } });
      assert.equal(
        kindOf(() => authorize(fakeCall(root), 'GetVersion')),
        'ALLOWED',
      );
      // A closed connection is forgotten: its peer string is worth nothing any more.
      alice.close();
      assert.equal(
        kindOf(() => authorize(fakeCall(alicePeer), 'GetVersion')),
        'UNAUTHENTICATED',
      );
      // TCP without a verified certificate (a TLS handshake that let it through, or no TLS at all).
      assert.equal(
        kindOf(() => authorize(fakeCall('127.0.0.1:5555'), 'GetVersion')),
        'UNAUTHENTICATED',
      );
      assert.equal(
        kindOf(() => authorize(fakeCall('127.0.0.1:5555', { transportSecurityType: 'ssl' }), 'GetVersion')),
        'UNAUTHENTICATED',
      );
      const cert = (cn: string, san?: string) => ({ subject: { CN: cn }, subjectaltname: san, fingerprint256: 'AB:CD' }) as never;
      assert.equal(
        kindOf(() => authorize(fakeCall('127.0.0.1:5555', { transportSecurityType: 'ssl', sslPeerCertificate: cert('operator') }), 'GetVersion')),
        'ALLOWED',
      );
      assert.equal(
        kindOf(() => authorize(fakeCall('127.0.0.1:5555', { transportSecurityType: 'ssl', sslPeerCertificate: cert('x', 'DNS:operator') }), 'GetVersion')),
        'ALLOWED',
      );
      // A SAN value that only looks like a list with the allowed name in it.
      const smuggled = cert('x', 'URI:"spiffe://a, DNS:operator"');
      assert.equal(
        kindOf(() => authorize(fakeCall('127.0.0.1:5555', { transportSecurityType: 'ssl', sslPeerCertificate: smuggled }), 'GetVersion')),
        'FORBIDDEN',
      );
    });

    it('names each caller by its identity: uid:N whatever the pid, cert:NAME whatever the address; admins by uid or name', () => {
      const registry = new ConnectionRegistry();
      const authorize = makeAuthorizer({ ...policy, adminUids: [1001], adminIdentities: ['boss'] }, registry);
      const sock = { once: () => undefined };
      const peer = (pid: number, uid: number): string => registry.tag(sock, { transport: 'unix', cred: { pid, uid, gid: uid, groups: [] } });
      const a1 = authorize(fakeCall(peer(10, 1000)), 'GetVersion');
      const a2 = authorize(fakeCall(peer(11, 1000)), 'GetVersion');
      assert.deepEqual([a1.id, a2.id, a1.admin, a1.uid], ['uid:1000', 'uid:1000', false, 1000]);
      assert.match(a1.label, /pid=10/, 'the log still names the process');
      const admin = authorize(fakeCall(peer(12, 1001)), 'GetVersion');
      assert.deepEqual([admin.id, admin.admin], ['uid:1001', true], '--admin-uid: allowed (not in allowUids) and admin');
      const root = authorize(fakeCall(peer(13, 0)), 'GetVersion');
      assert.deepEqual([root.id, root.admin], ['uid:0', true]);
      const cert = (cn: string) => ({ subject: { CN: cn }, fingerprint256: 'AB:CD' }) as never;
      const tls = (cn: string, port: number) =>
        authorize(fakeCall(`127.0.0.1:${port}`, { transportSecurityType: 'ssl', sslPeerCertificate: cert(cn) }), 'GetVersion');
      assert.deepEqual([tls('operator', 1).id, tls('operator', 2).id, tls('operator', 2).admin], ['cert:operator', 'cert:operator', false]);
      assert.deepEqual([tls('boss', 3).id, tls('boss', 3).admin], ['cert:boss', true], '--admin-identity: allowed and admin');
      const insecure = authorize(fakeCall(registry.tag(sock, { transport: 'insecure-tcp', remote: '127.0.0.1:9' })), 'GetVersion');
      assert.deepEqual([insecure.id, insecure.admin], ['insecure', true]);
    });

    it('parses subjectaltname strings, quoted values included', () => {
      assert.deepEqual(parseSubjectAltName('DNS:a.example, IP Address:127.0.0.1, URI:spiffe://x/y'), [
        { type: 'DNS', value: 'a.example' },
        { type: 'IP Address', value: '127.0.0.1' },
        { type: 'URI', value: 'spiffe://x/y' },
      ]);
      assert.deepEqual(parseSubjectAltName('URI:"a, DNS:b", DNS:c'), [
        { type: 'URI', value: 'a, DNS:b' },
        { type: 'DNS', value: 'c' },
      ]);
      assert.deepEqual(parseSubjectAltName(''), []);
    });

    it('knows loopback addresses', () => {
      for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
      for (const a of ['0.0.0.0', '::', '10.0.0.1', 'localhost', '::ffff:10.0.0.1', '128.0.0.1']) assert.ok(!isLoopback(a), a);
    });
  });
});
