// soccrd as a systemd service, without systemd running: the units install-service renders pass
// `systemd-analyze verify` and score at most 4.0 on `systemd-analyze security`; a real daemon speaks the
// sd_notify protocol to a datagram socket the test binds (READY=1 only once it serves, STATUS=,
// WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM); and it serves gRPC on listening sockets
// passed as systemd passes them (LISTEN_FDS from fd 3), with the same peer-credential authorization
// on a Unix socket, and an inherited TCP socket only under the rules of TCP listeners.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient, isServiceError } from '../client/client';
import * as N from '../daemon/kernel/native';
import { SOCKADDR_IN_LEN, decodeSockaddr, encodeSockaddr } from '../protocol/address';
import { Notifier, inheritedSockets } from '../daemon/server/systemd';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { Pki, tlsClient } from './support/pki';
import { callAsNobody, nobodyCaller } from './support/nobody-caller';
import { NOBODY } from './support/other-user';
import { unixSocketAt } from './support/unix-socket';

const MAIN = join(__dirname, '..', 'daemon', 'main.js');

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A datagram socket bound at `path` that collects what arrives (polled: Node has no Unix datagrams). */
class NotifyReceiver {
  readonly messages: Array<{ at: number; fields: Map<string, string> }> = [];
  private readonly fd: number;
  private readonly buf = N.pinned(4096);
  private readonly timer: NodeJS.Timeout;
  private listeners: Array<() => void> = [];

  constructor(readonly path: string) {
    this.fd = N.socket(N.AF_UNIX, N.SOCK_DGRAM | N.SOCK_CLOEXEC | N.SOCK_NONBLOCK, 0);
    const { addr, len } = N.unixSockaddr(path);
    N.bind(this.fd, addr, len);
    this.timer = setInterval(() => this.drain(), 5);
  }

  /** Reads every datagram waiting (bounded per round). */
  drain(): void {
    for (let i = 0; i < 64; i++) {
      const n = N.tryRecv(this.fd, this.buf, 0, this.buf.buf.length, N.MSG_DONTWAIT);
      if (n < 0) break;
      const fields = new Map<string, string>();
      for (const line of this.buf.buf.subarray(0, n).toString('utf8').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
      }
      this.messages.push({ at: Date.now(), fields });
      for (const l of this.listeners) l();
    }
  }

  /** Calls `fn` on every message from now on. */
  onMessage(fn: () => void): void {
    this.listeners.push(fn);
  }

  with(key: string, value?: string): Array<{ at: number; fields: Map<string, string> }> {
    return this.messages.filter((m) => m.fields.has(key) && (value === undefined || m.fields.get(key) === value));
  }

  /** Waits (bounded) until a message has `key`. */
  async waitFor(key: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.with(key).length === 0) {
      if (Date.now() > deadline) throw new Error(`no ${key} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => [...m.fields]))}`);
      await sleep(10);
    }
  }

  close(): void {
    clearInterval(this.timer);
    N.closeQuietly(this.fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A listening TCP socket on 127.0.0.1 with a port the kernel picks. */
function listeningTcpSocket(): { fd: number; port: number } {
  const fd = N.socket(N.AF_INET, N.SOCK_STREAM | N.SOCK_CLOEXEC, 0);
  const addr = N.pinned(N.SOCKADDR_STORAGE);
  encodeSockaddr({ family: 'ipv4', ip: '127.0.0.1', port: 0 }, addr.buf);
  N.bind(fd, addr, SOCKADDR_IN_LEN);
  N.listen(fd, 16);
  const len = N.getsockname(fd, addr);
  return { fd, port: decodeSockaddr(addr.buf, len).port };
}

/** The status a call ends with: 'OK' or the code's name. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return isServiceError(err) ? grpc.status[err.code] : String(err);
  }
}

describe('systemd service', function () {
  this.timeout(60_000);
  let dir: string;
  const openFds: number[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'soccrt-sd'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await cleanupDaemons();
    for (const fd of openFds.splice(0)) N.closeQuietly(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('units', () => {
    let unitDir: string;

    beforeEach(() => {
      unitDir = join(dir, 'units');
      const r = run(process.execPath, [MAIN, 'install-service', '--unit-dir', unitDir, '--socket', '--', '--allow-uid', '1000']);
      assert.equal(r.status, 0, r.out);
      // Never a daemon-reload for a test's directory; where systemd is not PID 1, the reason given is that.
      const booted = existsSync('/run/systemd/system');
      assert.match(
        r.out,
        booted ? /not reloading systemd: .* is not \/etc\/systemd\/system/ : /not reloading systemd: it is not the init system here .*PID 1 is /,
        r.out,
      );
    });

    it('install-service renders both units for this checkout and systemd-analyze verify accepts them', () => {
      const service = readFileSync(join(unitDir, 'soccrd.service'), 'utf8');
      const execStart = /^ExecStart=(.*)$/m.exec(service)?.[1];
      assert.equal(execStart, `${process.execPath} ${MAIN} --state-dir /var/lib/soccrd --listen unix:///run/soccrd/soccrd.sock --allow-uid 1000`);
      assert.doesNotMatch(service, /@[A-Z]+@/, 'every placeholder is filled');
      assert.match(readFileSync(join(unitDir, 'soccrd.socket'), 'utf8'), /^ListenStream=\/run\/soccrd\/soccrd\.sock$/m);
      const r = run('systemd-analyze', ['verify', join(unitDir, 'soccrd.service'), join(unitDir, 'soccrd.socket')]);
      assert.equal(r.status, 0, `systemd-analyze verify: ${r.out}`);
      assert.equal(r.out.trim(), '', `systemd-analyze verify has remarks: ${r.out}`);
    });

    it('systemd-analyze security rates the service at most 4.0', () => {
      const r = run('systemd-analyze', ['security', '--offline=yes', join(unitDir, 'soccrd.service')]);
      assert.equal(r.status, 0, r.out);
      const m = /Overall exposure level for soccrd\.service: (\d+\.\d+)/.exec(r.out);
      assert.ok(m, `no exposure level in: ${r.out.slice(-500)}`);
      console.log(`      security exposure ${m[1]}`);
      assert.ok(
        Number(m[1]) <= 4.0,
        `exposure ${m[1]} > 4.0:\n${r.out
          .split('\n')
          .filter((l) => l.startsWith('✗'))
          .join('\n')}`,
      );
    });

    it('uninstall-service removes what install-service wrote, and nothing else', () => {
      const r = run(process.execPath, [MAIN, 'uninstall-service', '--unit-dir', unitDir]);
      assert.equal(r.status, 0, r.out);
      assert.ok(!existsSync(join(unitDir, 'soccrd.service')) && !existsSync(join(unitDir, 'soccrd.socket')), r.out);
    });
  });

  describe('sd_notify', () => {
    it('READY=1 only once it serves, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM', async () => {
      const rx = new NotifyReceiver(join(dir, 'notify.sock'));
      try {
        // At READY=1 (and not before) a call must succeed at once: no waiting for the channel.
        let readyCall: Promise<string> | undefined;
        const socketPath = join(dir, 'ctl.sock');
        rx.onMessage(() => {
          if (readyCall || rx.with('READY', '1').length === 0) return;
          const client = new SoccrClient(`unix://${socketPath}`, { timeoutMs: 2000 });
          readyCall = client.getVersion().then(
            (v) => (client.close(), `OK ${v.version}`),
            (err: unknown) => (client.close(), isServiceError(err) ? grpc.status[err.code] : String(err)),
          );
        });
        const d = await DaemonProcess.start({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000' }, args: ['--listen', `unix://${socketPath}`] });
        await rx.waitFor('READY', 5000);
        const firstReady = rx.messages.findIndex((m) => m.fields.get('READY') === '1');
        assert.deepEqual(
          rx.messages.slice(0, firstReady).filter((m) => m.fields.has('READY')),
          [],
          'nothing READY-like before',
        );
        assert.equal(rx.with('READY').length, 1, 'READY=1 once');
        const ready = rx.messages[firstReady].fields;
        assert.equal(ready.get('MAINPID'), String(d.pid));
        assert.equal(ready.get('STATUS'), `serving on ${d.address}, unix://${socketPath}, 0 active sessions`);
        assert.match((await readyCall) ?? 'no call', /^OK \d/, 'GetVersion right after READY=1');

        // Watchdog: ~200 ms apart. Counted from READY on, over 1.2 s.
        const from = Date.now();
        await sleep(1200);
        const pings = rx
          .with('WATCHDOG', '1')
          .filter((m) => m.at >= from)
          .map((m) => m.at);
        const gaps = pings.slice(1).map((t, i) => t - pings[i]);
        console.log(`      ${pings.length} watchdog pings in 1.2 s, gaps ${gaps.join(' ')} ms`);
        assert.ok(pings.length >= 4 && pings.length <= 8, `${pings.length} pings in 1.2 s at 200 ms`);
        const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
        assert.ok(mean > 140 && mean < 300, `mean gap ${mean} ms, expected ~200`);
        assert.ok(rx.with('WATCHDOG').every((m) => m.fields.get('WATCHDOG') === '1'));

        assert.equal(await d.stop(), 0);
        rx.drain();
        const stopping = rx.with('STOPPING', '1');
        assert.equal(stopping.length, 1, 'STOPPING=1 on SIGTERM');
        assert.equal(stopping[0].fields.get('STATUS'), 'stopping (SIGTERM)');
      } finally {
        rx.close();
      }
    });

    it('an abstract NOTIFY_SOCKET (@name) works the same', async () => {
      const name = `@soccrt${process.pid}-notify`;
      const rx = new NotifyReceiver(name);
      try {
        await DaemonProcess.start({ env: { NOTIFY_SOCKET: name } });
        await rx.waitFor('READY', 5000);
        await sleep(300);
        assert.equal(rx.with('WATCHDOG').length, 0, 'no WATCHDOG_USEC: no pings');
      } finally {
        rx.close();
      }
    });

    it('reads and removes the variables; the watchdog is not ours when WATCHDOG_PID is another pid', () => {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/x.sock', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' };
      const n = Notifier.fromEnvironment(env, 4242);
      assert.equal(n.socketPath, '/run/x.sock');
      assert.equal(n.watchdogIntervalMs, undefined);
      assert.deepEqual(env, {}, 'children must not inherit them');
      assert.equal(
        Notifier.fromEnvironment({ NOTIFY_SOCKET: '/run/x.sock', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 4242).watchdogIntervalMs,
        15_000,
      );
      const off = Notifier.fromEnvironment({}, 4242);
      assert.equal(off.enabled, false);
      assert.equal(off.send({ READY: 1 }), false);
      const env2: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' };
      assert.deepEqual(inheritedSockets(env2, 4242), [], 'LISTEN_PID of another process: not ours');
      assert.deepEqual(env2, {});
    });
  });

  describe('socket activation', () => {
    it('serves gRPC on an inherited Unix socket, with the same peer-credential authorization, and leaves its file', async function () {
      const caller = nobodyCaller(this);
      const path = join(dir, 'activated.sock');
      const fd = unixSocketAt(path, 16); // only the daemon accepts on it
      openFds.push(fd);
      chmodSync(dir, 0o711);
      chmodSync(path, 0o666); // anyone may connect: the daemon decides by SO_PEERCRED
      // The inherited path is configured too: the daemon must serve it through fd 3, not bind it again.
      const d = await DaemonProcess.start({ listenFds: [{ fd, name: 'control' }], args: ['--listen', `unix://${path}`] });
      const inheritedLine = d.output.split('\n').find((l) => l.includes('"message":"listening on an inherited socket"')) ?? '';
      assert.match(inheritedLine, /"fd":3/);
      assert.match(inheritedLine, /"name":"control"/);
      assert.match(d.output, /"message":"served by an inherited socket"/);
      const client = new SoccrClient(`unix://${path}`, { timeoutMs: 5000 });
      try {
        assert.match((await client.getVersion()).version, /^\d/);
      } finally {
        client.close();
      }
      assert.match(d.output, /"caller":"uid=0 gid=0 pid=\d+"/, 'root called over the inherited socket');
      const nobody = await callAsNobody(caller, `unix://${path}`);
      assert.equal(nobody.uid, NOBODY);
      assert.equal(nobody.GetVersion.code, 'PERMISSION_DENIED', JSON.stringify(nobody));
      assert.match(nobody.GetVersion.details ?? '', /uid 65534/);
      assert.equal(await d.stop(), 0);
      assert.ok(existsSync(path), 'the socket file of the service manager stays');
      assert.ok(!existsSync(d.socketPath), 'its own socket file is removed');
    });

    it('an inherited TCP socket: refused without TLS or --insecure; plain with --insecure on loopback; else mTLS with the allowlist', async () => {
      const tcp = listeningTcpSocket();
      openFds.push(tcp.fd);
      const listenFds = [{ fd: tcp.fd, name: 'tcp' }];
      const address = `127.0.0.1:${tcp.port}`;
      await assert.rejects(
        DaemonProcess.start({ listenFds }),
        /cannot listen on socket-activation fd 3 \(tcp\): 127\.0\.0\.1:\d+: an inherited TCP socket needs TLS/,
      );
      await cleanupDaemons();

      await DaemonProcess.start({ listenFds, args: ['--insecure'] });
      const plain = new SoccrClient(address, { timeoutMs: 5000 });
      try {
        assert.match((await plain.getVersion()).version, /^\d/);
      } finally {
        plain.close();
      }
      await cleanupDaemons();

      const pki = new Pki(mkdtempSync(join(dir, 'pki-')));
      pki.ca('ca');
      pki.leaf('ca', 'server', 'soccrd.test', ['subjectAltName=IP:127.0.0.1', 'extendedKeyUsage=serverAuth']);
      pki.leaf('ca', 'operator', 'operator', ['extendedKeyUsage=clientAuth']);
      pki.leaf('ca', 'intruder', 'intruder', ['extendedKeyUsage=clientAuth']);
      const tls = ['--tls-cert', pki.path('server', 'crt'), '--tls-key', pki.path('server', 'key'), '--tls-client-ca', pki.path('ca', 'crt')];
      await assert.rejects(DaemonProcess.start({ listenFds, args: tls }), /a TLS listener needs --allow-identity/);
      await cleanupDaemons();
      const d = await DaemonProcess.start({ listenFds, args: [...tls, '--allow-identity', 'operator'] });
      const clients = [tlsClient(address, pki.client('operator')), tlsClient(address, pki.client('intruder')), new SoccrClient(address, { timeoutMs: 3000 })];
      try {
        const [operator, intruder, plaintext] = await Promise.all(clients.map((c) => codeOf(c.getVersion())));
        assert.equal(operator, 'OK');
        assert.match(d.output, /"caller":"cert operator from 127\.0\.0\.1:\d+"/);
        assert.equal(intruder, 'PERMISSION_DENIED');
        assert.equal(plaintext, 'UNAVAILABLE', 'no TLS: no call');
      } finally {
        for (const c of clients) c.close();
      }
    });
  });
});
