// Hand-off on one host (issue 13): a server in a namespace with a listener and live connections whose
// peers never stop sending is upgraded to a new owner beside it, through the daemon's Handoff (the same
// sockets, passed over the hand-over protocol) while clients keep connecting; and every way it can fail
// leaves the old owner serving exactly as before. Real kernel, real processes: the lab's LAN (server and
// new owner in host A, clients in C), a soccrd in A.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient } from '../client/client';
import { migrate } from '../client/migrate';
import { DaemonProcess, cleanupDaemons, daemonLogs, expectStatus } from '../lab/daemon';
import { Lan, SERVICE_V4, destroyLans, leftoverLanNamespaces } from '../lab/lan';
import { MultiConfig, MultiFixture, MultiStatus, exchangeProblems, killAllMulti, untilExchanged } from '../lab/multi';
import { clientSeed, multiBytes } from '../lab/multi-data';
import { destroyTopologies, sleep, socketPath } from '../lab/scenario';
import { DeliveredListener, DeliveredSocket, SocketReceiver } from '../receiver/receiver';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { NOBODY, OtherUserCopy } from './support/other-user';
import type { RpcOutcome } from './fixtures/rpc-caller';
import { soccrErrorOf } from '../protocol/error-status';
import { stateName } from '../protocol/saved-state';
import { processState } from '../daemon/repair/acquire';

const PORT = 5300;
const SOCCRCTL = join(__dirname, '..', 'client', 'soccrctl.js');
const RATE = 8 * 1024;

interface Lab {
  lan: Lan;
  daemon: DaemonProcess;
  client: SoccrClient;
  server: MultiFixture;
  clients: MultiFixture[];
}

/**
 * Host A's soccrd, a server in A with `count` accepted connections and its listener open for more,
 * clients in C streaming to it and it to them, half of the server's connections not read for a while so
 * that their queues are full.
 */
async function startLab(count: number, env?: Record<string, string>, args?: string[]): Promise<Lab> {
  const lan = Lan.create();
  const daemon = await DaemonProcess.start({ netns: lan.ns.A, env, args });
  const client = new SoccrClient(daemon.address, { timeoutMs: 20_000 });
  const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count, acceptMore: 30, bytesPerTick: RATE });
  const first = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count, bytesPerTick: RATE });
  await Promise.all([server.waitConnected(15_000), first.waitConnected(15_000)]);
  await server.stream(true);
  await first.stream(true);
  await server.read(false, { stride: 2 });
  await sleep(600);
  return { lan, daemon, client, server, clients: [first] };
}

/** More clients in C, connections firstIndex.. of the lab's server, streaming from their start. */
function moreClients(t: Lab, firstIndex: number, count: number): Promise<MultiFixture> {
  const cfg: MultiConfig = { mode: 'clients', ip: SERVICE_V4, port: PORT, count, firstIndex, streaming: true, bytesPerTick: RATE };
  return MultiFixture.start(t.lan.ns.C, cfg).then((f) => {
    t.clients.push(f);
    return f;
  });
}

/**
 * Stops the streams, then waits until every byte each side sent arrived at the other exactly, with no
 * error and no EOF (no FIN, no RST) on either side; returns the final statuses (the clients' as one).
 */
async function exchanged(server: MultiFixture, clients: MultiFixture[], timeoutMs: number): Promise<{ server: MultiStatus; clients: MultiStatus }> {
  await Promise.all([server.stream(false), ...clients.map((c) => c.stream(false))]);
  await server.read(true);
  const [s, c] = await untilExchanged(server, clients, timeoutMs);
  return { server: s, clients: c };
}

/** No client fixture saw a failed connect (nor any other failure of its own). */
async function noFailedConnects(clients: MultiFixture[], total: number): Promise<void> {
  await Promise.all(clients.map((c) => c.waitConnected(15_000)));
  const st = await Promise.all(clients.map((c) => c.status()));
  for (const s of st) assert.equal(s.error, null, `a client fixture failed: ${s.error ?? ''}`);
  assert.equal(
    st.reduce((a, s) => a + s.totals.connections, 0),
    total,
    'every client connection established',
  );
}

describe('hand-off on one host (Handoff, migrate on one daemon)', function () {
  this.timeout(180_000);
  let lab: Lab | undefined;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    lab?.client.close();
    lab = undefined;
    await killAllMulti();
    await cleanupDaemons();
    destroyLans();
    destroyTopologies();
  });

  after(() => {
    assert.deepEqual(leftoverLanNamespaces(), []);
  });

  it('hands a listener and 10 streaming connections with full queues to a new owner while clients keep connecting: no failed connect, no FIN/RST, every byte exact', async () => {
    const t = (lab = await startLab(10));
    const path = socketPath('handoff');
    const next = await MultiFixture.start(t.lan.ns.A, { mode: 'adopt', unixPath: path, count: 10, acceptMore: 30, streaming: true, bytesPerTick: RATE });
    // Connecting while the old owner still serves, and on through its quiescing and the hand-off.
    const early = moreClients(t, 10, 5);
    await sleep(50);
    const { offsets } = await t.server.quiesce();
    await next.continueFrom(offsets);
    const during = moreClients(t, 15, 5);
    const r = await t.client.handoff(t.server.pid, path, { all: true, listeners: true });
    await Promise.all([early, during]);
    await moreClients(t, 20, 5);

    const listeners = r.sockets.filter((s) => stateName(s.state) === 'LISTEN');
    assert.equal(listeners.length, 1, 'the listener was handed off');
    assert.equal(r.sockets.length, 1 + Object.keys(offsets).length, 'every connection the old owner held, and its listener');
    assert.ok(r.freezeUs > 0);
    assert.equal(r.oldOwnerKilled, false);
    assert.equal(processState(t.server.pid), 'T', 'the old owner is left stopped');
    await next.waitEvent('handover-live', 10_000, ['error', 'handover-failed']);

    await noFailedConnects(t.clients, 25);
    await sleep(1000);
    // The caller's choice: the stopped owner is killed. Its sockets live on in the new owner: no FIN.
    t.server.kill();
    await t.server.exited();
    await sleep(500);
    const { server, clients } = await exchanged(next, t.clients, 60_000);
    assert.equal(server.totals.connections, 25, 'the new owner holds every connection: the handed ones and those it accepted');
    assert.equal(clients.totals.eofs + clients.totals.errors + server.totals.eofs + server.totals.errors, 0);
    assert.ok(
      server.connections.every((c) => c.received > 0 && c.sent > 0),
      'every connection carried bytes both ways at the new owner',
    );
  });

  it('an owner that closes a connection after its sockets went to the new owner but before it is stopped: they are handed over again while it is stopped, without that one (its peer sees the close), the others exact', async () => {
    const t = (lab = await startLab(6));
    const path = socketPath('again');
    const { offsets } = await t.server.quiesce();
    // A new owner slow to acknowledge: the sockets are all with it, the old owner still runs, and closes one.
    const next = await MultiFixture.start(t.lan.ns.A, {
      mode: 'adopt',
      unixPath: path,
      continueFrom: offsets,
      acceptMore: 30,
      ackDelayMs: 1500,
      streaming: true,
      bytesPerTick: RATE,
    });
    const handing = t.client.handoff(t.server.pid, path, { all: true, listeners: true });
    await sleep(600);
    assert.notEqual(processState(t.server.pid), 'T', 'the old owner runs while the new one holds its sockets unacknowledged');
    await t.server.close({ stride: 6, offset: 1 });
    const r = await handing;

    assert.equal(r.sockets.length, 6, 'the five connections left and the listener');
    assert.ok(
      r.skipped.some((x) => x.kind === 'NO_SUCH_FD'),
      `the closed one is named: ${JSON.stringify(r.skipped)}`,
    );
    await next.waitEvent('handover-live', 10_000, ['error', 'handover-failed']);
    const st = await next.status();
    assert.deepEqual(st.handovers, { accepted: 2, live: 1, failed: [], again: 1 }, 'the first hand-over aborted with "again", the second live');
    assert.equal(st.connections.length, 5);
    t.server.kill();
    await t.server.exited();
    // The close reached its peer (no copy of ours or the new owner's kept it open); the others are exact.
    await Promise.all([next.stream(false), ...t.clients.map((c) => c.stream(false))]);
    await next.read(true);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [s, c] = await Promise.all([next.status(), t.clients[0].status()]);
      const closed = c.connections.find((x) => x.index === 1);
      const rest = { ...c, connections: c.connections.filter((x) => x.index !== 1) };
      const problems = exchangeProblems(s, rest);
      if (closed && (closed.eof || closed.error) && problems.length === 0) break;
      if (Date.now() > deadline) assert.fail(`closed: ${JSON.stringify(closed)}; ${problems.slice(0, 5).join('; ')}`);
      await sleep(100);
    }
  });

  it('a receiver that refuses or dies changes nothing: the old owner is continued and keeps serving every socket exactly', async () => {
    const t = (lab = await startLab(6));
    const before = await t.client.listSockets(t.server.pid);
    await t.server.quiesce();

    // A new owner that refuses (it has no offsets for these connections).
    const refusing = socketPath('refuse');
    const rx = await MultiFixture.start(t.lan.ns.A, { mode: 'adopt', unixPath: refusing, count: 6, acceptMore: 30 });
    const connecting = moreClients(t, 6, 4);
    const e1 = await expectStatus(
      t.client.handoff(t.server.pid, refusing, { all: true, listeners: true }),
      grpc.status.FAILED_PRECONDITION,
      'refused hand-off',
    );
    assert.equal(soccrErrorOf(e1)?.kind, 'DELIVERY');
    assert.match(e1.details, /refused the hand-over: no offsets/);
    assert.notEqual(processState(t.server.pid), 'T', 'the old owner is continued');
    await rx.waitEvent('handover-failed', 5_000, ['error']);

    // A receiver that dies: it takes the connection and closes it at its first byte.
    const dying = socketPath('dies');
    const srv = net.createServer((c) => c.once('data', () => c.destroy()));
    await new Promise<void>((resolve) => srv.listen(dying, resolve));
    try {
      const e2 = await expectStatus(
        t.client.handoff(t.server.pid, dying, { all: true, listeners: true }),
        grpc.status.FAILED_PRECONDITION,
        'hand-off to a dying receiver',
      );
      assert.equal(soccrErrorOf(e2)?.kind, 'DELIVERY');
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    assert.notEqual(processState(t.server.pid), 'T', 'the old owner is continued');
    // Nobody listening at all.
    await expectStatus(t.client.handoff(t.server.pid, socketPath('nobody'), { all: true }), grpc.status.FAILED_PRECONDITION, 'hand-off to nobody');
    assert.notEqual(processState(t.server.pid), 'T');

    // Nothing changed: the same sockets at the same fds, and the old owner goes on with all of them,
    // its listener included (the clients that connected meanwhile waited in its queue).
    const now = await t.client.listSockets(t.server.pid);
    for (const s of before) {
      assert.ok(
        now.some((x) => x.fd === s.fd && x.inode === s.inode),
        `fd ${s.fd} still the old owner's`,
      );
    }
    await t.server.resume();
    await connecting;
    await noFailedConnects(t.clients, 10);
    await sleep(500);
    const { server } = await exchanged(t.server, t.clients, 60_000);
    assert.equal(server.totals.connections, 10);
  });

  it('migrate --from X --to X in the same namespace (EADDRNOTAVAIL before) now hands the sockets off', async () => {
    const t = (lab = await startLab(10));
    const path = socketPath('migrate');
    const { offsets } = await t.server.quiesce();
    const next = await MultiFixture.start(t.lan.ns.A, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: RATE });
    const report = await migrate({ from: t.daemon.address, to: t.daemon.address, pid: t.server.pid, netns: t.lan.nsPath(t.lan.ns.A), deliverUnixPath: path });
    assert.equal(report.transport, 'handoff');
    assert.equal(report.connections, 10);
    assert.deepEqual(
      report.phases.map((p) => p.name),
      ['handoff'],
    );
    assert.ok(
      report.handoff?.skipped.some((s) => s.reason.includes('listening socket')),
      'the listener is reported as left out',
    );
    assert.equal(processState(t.server.pid), 'T', 'the old owner is left stopped, as after a migration');
    await next.waitEvent('handover-live', 10_000, ['error', 'handover-failed']);
    // A daemon restarted after the hand-off leaves the old owner stopped (the journal says released).
    await t.daemon.stop();
    await t.daemon.restart();
    t.client.close();
    t.client = new SoccrClient(t.daemon.address, { timeoutMs: 20_000 });
    await t.client.getVersion();
    assert.equal(processState(t.server.pid), 'T', 'still stopped after the restart');
    await sleep(800);
    t.server.kill();
    await t.server.exited();
    const { server } = await exchanged(next, t.clients, 60_000);
    assert.equal(server.totals.connections, 10);
  });

  it('migrate into another namespace of the same daemon does not hand off: the daemon refuses before touching anything', async () => {
    const t = (lab = await startLab(2));
    const e = await expectStatus(
      t.client.handoff(t.server.pid, socketPath('x'), { all: true, expectNetns: t.lan.nsPath(t.lan.ns.B) }),
      grpc.status.FAILED_PRECONDITION,
      'hand-off expecting another namespace',
    );
    assert.equal(soccrErrorOf(e)?.kind, 'TARGET_STATE');
    assert.notEqual(processState(t.server.pid), 'T', 'the owner was never stopped');
    await t.server.stream(false);
    const { server } = await exchanged(t.server, t.clients, 30_000);
    assert.equal(server.totals.connections, 2);
  });

  it('soccrctl handoff --kill-old to the Node receiver: the listener comes as a handle a net.Server listens on, the connections as net.Sockets, the old owner is killed', async () => {
    const t = (lab = await startLab(4));
    await t.server.quiesce();
    const path = socketPath('node');
    const rx = await SocketReceiver.listen(path);
    const got = new Promise<{ sockets: DeliveredSocket[]; listeners: DeliveredListener[] }>((resolve, reject) => {
      rx.once('batch', (sockets, listeners) => resolve({ sockets, listeners }));
      rx.once('error', reject);
    });
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          SOCCRCTL,
          '--daemon',
          t.daemon.address,
          '--json',
          'handoff',
          '--pid',
          String(t.server.pid),
          '--all',
          '--listeners',
          '--deliver',
          `unix:${path}`,
          '--kill-old',
        ],
        { timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
    });
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout) as { oldOwnerKilled: boolean; sockets: Array<{ state: string }> };
    assert.equal(out.oldOwnerKilled, true);
    assert.deepEqual(out.sockets.map((x) => x.state).sort(), ['ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'LISTEN']);
    await t.server.exited();
    const { sockets, listeners } = await got;
    await rx.close();
    assert.equal(sockets.length, 4);
    assert.ok(sockets.every((d) => d.socket instanceof net.Socket && d.meta.state === 'ESTABLISHED'));
    assert.equal(listeners.length, 1);
    assert.equal(listeners[0].meta.state, 'LISTEN');
    assert.equal(listeners[0].meta.local.port, PORT);

    // The handed listener serves on: new clients are accepted by a net.Server on its handle, and their
    // first bytes are their streams' first bytes.
    const WANT = 32 * 1024;
    const firsts = new Map<number, Buffer>();
    const accepted: net.Socket[] = [];
    const server = net.createServer((c) => {
      accepted.push(c);
      let buf = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        if (buf.length >= WANT) return;
        buf = Buffer.concat([buf, d]);
        if (buf.length >= WANT) firsts.set(c.remotePort ?? -1, buf.subarray(0, WANT));
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(listeners[0].handle, resolve));
    try {
      await moreClients(t, 4, 3);
      const deadline = Date.now() + 20_000;
      while (firsts.size < 3 && Date.now() < deadline) await sleep(100);
      assert.equal(firsts.size, 3, 'three clients accepted through the handed listener, each sent its bytes');
      for (const [port, bytes] of firsts) assert.ok(bytes.equals(multiBytes(clientSeed(port - 40_000), 0, WANT)), `client port ${port}: its stream`);
    } finally {
      for (const c of [...sockets.map((d) => d.socket), ...accepted]) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a daemon killed while the owner is stopped continues it at its restart: the old owner keeps serving every socket exactly', async () => {
    const t = (lab = await startLab(4, { SOCCRD_CRASH_AT: 'handoff.after-stop' }));
    // A receiver that takes them (the sockets are handed over before the owner is stopped; the crash comes after the stop).
    const { offsets } = await t.server.quiesce();
    const rx = await MultiFixture.start(t.lan.ns.A, { mode: 'adopt', unixPath: socketPath('crash'), continueFrom: offsets, acceptMore: 30 });
    await t.client.handoff(t.server.pid, rx.config.unixPath as string, { all: true, listeners: true }).then(
      () => assert.fail('the daemon was to kill itself'),
      () => undefined,
    );
    assert.equal(await t.daemon.waitExit(15_000), 'SIGKILL');
    assert.equal(processState(t.server.pid), 'T', 'the crash left the owner stopped');
    await t.daemon.restart();
    t.client.close();
    t.client = new SoccrClient(t.daemon.address, { timeoutMs: 20_000 });
    await t.client.getVersion();
    assert.notEqual(processState(t.server.pid), 'T', 'recovery continued the owner');
    await t.server.resume();
    await moreClients(t, 4, 2);
    await noFailedConnects(t.clients, 6);
    await sleep(500);
    const { server } = await exchanged(t.server, t.clients, 60_000);
    assert.equal(server.totals.connections, 6);
  });

  it('a non-root caller (uid 65534, the default policy: its own processes) is refused the hand-off of a root process: PERMISSION_DENIED, the owner never stopped', async function () {
    const caller = OtherUserCopy.of(NOBODY, NOBODY).program(this, 'test/fixtures/rpc-caller.js');
    const tmp = mkdtempSync(join(tmpdir(), 'soccrt-ho-'));
    try {
      const config = join(tmp, 'open-socket.json');
      writeFileSync(config, JSON.stringify({ socketMode: 0o666 }));
      const t = (lab = await startLab(2, undefined, ['--config', config, '--allow-uid', String(NOBODY)]));
      chmodSync(t.daemon.dir, 0o711);
      const out = await new Promise<RpcOutcome[]>((resolve, reject) => {
        execFile(
          process.execPath,
          [caller, t.daemon.address, JSON.stringify([{ op: 'handoff', pid: t.server.pid, path: join(tmp, 'rx.sock') }])],
          { uid: NOBODY, gid: NOBODY, cwd: '/', timeout: 60_000 },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`${err.message}\n${stderr}`));
            else
              resolve(
                stdout
                  .trim()
                  .split('\n')
                  .map((l) => JSON.parse(l) as RpcOutcome),
              );
          },
        );
      });
      assert.equal(out[0].code, 'PERMISSION_DENIED', out[0].details);
      assert.equal(out[0].kind, 'FORBIDDEN');
      // refused by the first rule it breaks: no hand-over directory by default, and a root process
      assert.match(out[0].details ?? '', /uid 0|your policy names no hand-over directory/);
      assert.notEqual(processState(t.server.pid), 'T', 'the owner was never stopped');
      await t.server.stream(false);
      const { server } = await exchanged(t.server, t.clients, 30_000);
      assert.equal(server.totals.connections, 2);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
