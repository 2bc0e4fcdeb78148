// Crash safety (issue 5): soccrd killed with SIGKILL at each step of checkpoint, restore and migrate
// (SOCCRD_CRASH_AT, the test-only knob of daemon/custody/journal.ts), then started again on the same state
// directory and lock table. Each time: no connection stays frozen (it carries exact bytes both ways
// again, without RST or FIN at the peer), no lock entry of the daemon is left in any namespace involved,
// and the crash journal holds no record.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrateError, migrate } from '../client/migrate';
import { SessionState, SoccrClient } from '../client/client';
import { listTcpSockets } from '../daemon/repair/acquire';
import { instanceOf } from '../daemon/custody/instance';
import { JOURNAL_FILE, Journal } from '../daemon/custody/journal';
import { silentLogger } from '../daemon/log';
import * as N from '../daemon/kernel/native';
import { NetworkLock } from '../daemon/custody/netlock';
import { TcpState } from '../protocol/saved-state';
import { DaemonProcess, daemonLogs } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { Lan, SERVICE_V4, leftoverLanNamespaces } from '../lab/lan';
import { tearDownLabs } from './support/migration-lab';
import { MultiFixture, untilExchanged } from '../lab/multi';
import { leftoverNamespaces, run, lockEntries } from '../lab/netns';
import { Expect, KiB, Pair, connectPair, sleep, socketPath, verifyStreams } from '../lab/scenario';

function journal(d: DaemonProcess): unknown[] {
  return Journal.records(d.stateDir);
}

/** Polls `pred` until it holds; fails after `timeoutMs` naming `what`. */
async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The state letter of /proc/PID/stat (T: stopped). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** Reads a socket option of the owner's socket through pidfd_getfd, as the daemon would. */
function ownerSockopt(pid: number, fd: number, level: number, name: number): number {
  const pidfd = N.pidfdOpen(pid);
  try {
    const dup = N.pidfdGetfd(pidfd, fd);
    try {
      return N.getsockoptInt(dup, level, name);
    } finally {
      N.closeQuietly(dup);
    }
  } finally {
    N.closeQuietly(pidfd);
  }
}

const repairMode = (p: Pair): number => ownerSockopt(p.owner.pid, p.owner.connectedFd, N.SOL_TCP, N.TCP.REPAIR);

const ESTABLISHED: Expect = { state: TcpState.ESTABLISHED, unread: true, unacked: false, unsent: false, ownerClosed: false, peerClosed: false };

/** Unread bytes both ways, so that the checkpoint carries queues (and streams several frames). */
async function fillQueues(p: Pair): Promise<void> {
  await p.peer.command('write', { bytes: 256 * KiB });
  await p.owner.command('write', { bytes: 256 * KiB });
  await p.owner.until((s) => s.pending === 0, 10_000, 'owner bytes taken by the kernel');
  await p.peer.until((s) => s.pending === 0, 10_000, 'peer bytes taken by the kernel');
  await sleep(100);
}

/** The connection carries exact bytes both ways from where it was; the peer saw no RST and no FIN. */
async function assertFlows(p: Pair): Promise<void> {
  await p.owner.command('read', { on: true });
  await verifyStreams(p.peer, p.owner, ESTABLISHED);
}

describe('crash safety: soccrd killed at every step, restarted on the same state', function () {
  this.timeout(60_000);
  let client: SoccrClient | undefined;

  afterEach(async function () {
    client?.close();
    client = undefined;
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs(60)}\n`);
    await killAllEndpoints();
    await tearDownLabs();
  });

  after(() => {
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
    assert.deepEqual(leftoverLanNamespaces(), [], 'LAN namespaces left behind');
  });

  describe('checkpoint', () => {
    const steps = ['after-journal', 'after-lock', 'after-freeze', 'mid-stream', 'after-stream'] as const;
    for (const step of steps) {
      it(`killed ${step}: the connection goes on at its owner, the owner runs, nothing is left`, async () => {
        const d = await DaemonProcess.start({ env: { SOCCRD_CRASH_AT: `checkpoint.${step}` } });
        client = new SoccrClient(d.address);
        const p = await connectPair('ipv4', 1);
        const host = p.topo.hosts[0];
        await fillQueues(p);
        // The owner is stopped by the daemon (as migrate does): recovery must continue it.
        const leaseMs = step === 'after-stream' ? 5000 : 20_000;
        const ck = await client.checkpointToFile(p.owner.pid, { all: true, stopOwner: true, leaseMs }, socketPath('ckpt')).then(
          () => 'ok',
          (err: unknown) => String(err),
        );
        assert.equal(await d.waitExit(15_000), 'SIGKILL', `the daemon was to kill itself (checkpoint: ${ck})`);

        // What the crash left: a journal, and from the lock on a stopped owner and locked entries.
        assert.ok(journal(d).length > 0, 'the journal holds the session');
        const locked = step !== 'after-journal';
        assert.equal(lockEntries(host, d.lockTable), locked ? 1 : 0, 'lock entries left by the crash');
        if (locked) assert.equal(processState(p.owner.pid), 'T', 'the owner was left stopped');
        if (['after-freeze', 'mid-stream', 'after-stream'].includes(step)) assert.equal(repairMode(p), 1, 'the socket was left frozen');

        await d.restart();
        if (step === 'after-stream') {
          // A whole checkpoint is taken over as it was, FROZEN until its journaled lease ends.
          const sessions = await client.listSessions();
          assert.equal(sessions.length, 1, 'one session taken over');
          assert.equal(sessions[0].state, SessionState.FROZEN);
          assert.match(sessions[0].reason, /recovered/);
          assert.equal(repairMode(p), 1, 'still frozen while its lease runs');
          assert.equal(lockEntries(host, d.lockTable), 1, 'still locked while its lease runs');
          const c = client;
          await until(async () => (await c.getSession(sessions[0].sessionId)).state === SessionState.EXPIRED, 8000, 'the lease to end');
        }
        await until(() => journal(d).length === 0, 5000, 'an empty journal');
        assert.equal(lockEntries(host, d.lockTable), 0, 'lock entries left behind');
        assert.equal(repairMode(p), 0, 'the socket is out of repair mode');
        assert.notEqual(processState(p.owner.pid), 'T', 'the owner was continued');
        assert.equal(ownerSockopt(p.owner.pid, p.owner.connectedFd, N.SOL_SOCKET, N.SO.REUSEADDR), 1, "the user's SO_REUSEADDR is back");
        await assertFlows(p);
      });
    }
  });

  describe('restore', () => {
    for (const step of ['after-lock', 'after-first-socket', 'held'] as const) {
      it(`killed ${step}: the rebuilt socket vanished, its lock table went, the source goes on`, async () => {
        const d = await DaemonProcess.start({ env: { SOCCRD_CRASH_AT: `restore.${step}` } });
        client = new SoccrClient(d.address);
        const p = await connectPair('ipv4', 2);
        const [h0, h1] = p.topo.hosts;
        await fillQueues(p);
        const file = socketPath('ckpt');
        const ck = await client.checkpointToFile(p.owner.pid, { all: true, stopOwner: true, leaseMs: 4000 }, file);
        const restored = await client.restoreFromFile(file, { netns: p.topo.nsPath(h1), goLive: false }).then(
          () => 'ok',
          (err: unknown) => String(err),
        );
        assert.equal(await d.waitExit(15_000), 'SIGKILL', `the daemon was to kill itself (restore: ${restored})`);
        assert.equal(lockEntries(h1, d.lockTable), 1, 'the destination lock was left');
        assert.equal(lockEntries(h0, d.lockTable), 1, 'the source lock was left');

        await d.restart();
        assert.equal(lockEntries(h1, d.lockTable), 0, 'the destination lock entries went at start');
        // The source session (same daemon) is taken over until its lease ends, then resumed.
        const c = client;
        await until(
          async () => (await c.getSession(ck.header.sessionId).catch(() => undefined))?.state !== SessionState.FROZEN,
          8000,
          'the source lease to end',
        );
        await until(() => journal(d).length === 0, 5000, 'an empty journal');
        assert.equal(lockEntries(h0, d.lockTable), 0, 'source lock entries left behind');
        assert.equal(lockEntries(h1, d.lockTable), 0, 'destination lock entries left behind');
        assert.deepEqual(
          run('ip', ['netns', 'exec', h1, 'ss', '-tanH'])
            .split('\n')
            .filter((l) => l.trim()),
          [],
          'no socket left in the destination namespace',
        );
        assert.notEqual(processState(p.owner.pid), 'T', 'the owner was continued');
        await assertFlows(p);
      });
    }
  });

  it("killed during a released session's lock grace period: the entries stay until it ends, the socket is never resumed", async () => {
    const d = await DaemonProcess.start({ args: ['--lock-grace-ms', '3000'] });
    client = new SoccrClient(d.address);
    const p = await connectPair('ipv4', 1);
    const host = p.topo.hosts[0];
    const ck = await client.checkpointToFile(p.owner.pid, { all: true, stopOwner: true }, socketPath('ckpt'));
    await client.release(ck.header.sessionId);
    d.kill();
    assert.equal(await d.waitExit(5000), 'SIGKILL');
    await d.restart();
    assert.deepEqual(await client.listSessions(), [], 'a released session is not taken over');
    assert.equal(lockEntries(host, d.lockTable), 1, 'the grace period goes on after the restart');
    await until(() => lockEntries(host, d.lockTable) === 0 && journal(d).length === 0, 6000, 'the end of the grace period');
    // Committed: the socket stays frozen and silent at its stopped owner, as Release promises.
    assert.equal(repairMode(p), 1, 'a released socket is never resumed');
    assert.equal(processState(p.owner.pid), 'T', 'a released owner stays stopped');
  });

  it('recovery touches no socket that reused a journaled fd, skips a dead owner, and removes stale entries', async () => {
    const d = await DaemonProcess.start();
    const p = await connectPair('ipv4', 1);
    const host = p.topo.hosts[0];
    assert.equal(await d.stop(), 0);
    const fd = p.owner.connectedFd;
    const sock = listTcpSockets(p.owner.pid).find((s) => s.fd === fd);
    assert.ok(sock);
    // A stale lock entry in the owner's namespace, with its drop rules: the connection is cut until removed.
    // Marked as the daemon's own (its instance), as its earlier run would have left it.
    const lock = new NetworkLock({ table: d.lockTable, owner: instanceOf(d.stateDir), mark: 0x50cc, log: silentLogger() });
    lock.lock(p.topo.nsPath(host), [{ local: sock.local, remote: sock.remote }]);
    const ns = (pid: number): object => {
      const st = spawnSync('stat', ['-L', '-c', '%d %i', `/proc/${pid}/ns/net`], { encoding: 'utf8' })
        .stdout.trim()
        .split(' ');
      return { dev: Number(st[0]), ino: Number(st[1]), pid };
    };
    const stat = readFileSync(`/proc/${p.owner.pid}/stat`, 'latin1');
    const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const dead = spawnSync('true').pid;
    const now = Date.now();
    const records = [
      // The owner's fd now names another socket (another inode): it must not be touched, even though
      // the journal says its SO_REUSEADDR was off and the session was streamed and is still leased.
      {
        v: 1,
        t: 'source',
        id: 'reused-fd',
        pid: p.owner.pid,
        startTime,
        leaseMs: 20_000,
        expires: now + 20_000,
        stopOwner: false,
        conns: [{ fd, inode: sock.inode + 1, reuseAddr: false }],
      },
      { v: 1, t: 'streamed', id: 'reused-fd', expires: now + 20_000 },
      { v: 1, t: 'lock', id: 'reused-fd', kind: 'source', table: d.lockTable, ns: ns(p.owner.pid), tuples: [{ local: sock.local, remote: sock.remote }] },
      // An owner that exited: dropped.
      {
        v: 1,
        t: 'source',
        id: 'dead-owner',
        pid: dead,
        startTime: 1,
        leaseMs: 1000,
        expires: now - 1000,
        stopOwner: true,
        conns: [{ fd: 3, inode: 1, reuseAddr: true }],
      },
      { v: 1, t: 'stop', id: 'dead-owner' },
    ];
    writeFileSync(join(d.stateDir, JOURNAL_FILE), `${records.map((r) => JSON.stringify(r)).join('\n')}\n{"v":1,"t":"lo`); // a torn last line too
    await d.restart();
    client = new SoccrClient(d.address);
    assert.deepEqual(await client.listSessions(), [], 'nothing taken over');
    assert.deepEqual(journal(d), [], 'journal emptied');
    assert.equal(lockEntries(host, d.lockTable), 0, 'the stale entry was removed');
    assert.equal(ownerSockopt(p.owner.pid, fd, N.SOL_SOCKET, N.SO.REUSEADDR), 1, 'SO_REUSEADDR of the other socket untouched');
    assert.equal(repairMode(p), 0);
    assert.match(d.output, /the fd now names another socket/);
    assert.match(d.output, /the owner is gone/);
    await assertFlows(p);
  });

  describe('migrate', () => {
    const PORT = 5000;

    interface Bench {
      lan: Lan;
      a: DaemonProcess;
      b: DaemonProcess;
      server: MultiFixture;
      clients: MultiFixture;
    }

    async function bench(count: number, o: { aArgs?: string[]; bEnv?: Record<string, string> } = {}): Promise<Bench> {
      const lan = Lan.create();
      const [a, b] = await Promise.all([DaemonProcess.start({ netns: lan.ns.A, args: o.aArgs ?? [] }), DaemonProcess.start({ netns: lan.ns.B, env: o.bEnv })]);
      const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count });
      const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count, bytesPerTick: 8 * 1024 });
      await Promise.all([server.waitConnected(15_000), clients.waitConnected(15_000)]);
      await server.stream(true);
      await clients.stream(true);
      await sleep(300);
      return { lan, a, b, server, clients };
    }

    async function handOff(t: Bench): Promise<{ receiver: MultiFixture; path: string }> {
      const { offsets } = await t.server.quiesce();
      const path = socketPath('deliver');
      const receiver = await MultiFixture.start(t.lan.ns.B, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: 8 * 1024 });
      return { receiver, path };
    }

    function assertClean(t: Bench): void {
      assert.equal(lockEntries(t.lan.ns.A, t.a.lockTable), 0, 'lock entries left on A');
      assert.equal(lockEntries(t.lan.ns.B, t.b.lockTable), 0, 'lock entries left on B');
      assert.deepEqual(journal(t.a), [], 'records left in the journal of A');
      assert.deepEqual(journal(t.b), [], 'records left in the journal of B');
    }

    it('the source daemon is killed while the destination is held: restarted, it still holds the session, and the migration completes', async () => {
      const t = await bench(3, { aArgs: ['--lock-grace-ms', '300'] });
      const { receiver, path } = await handOff(t);
      const flag = socketPath('restarted');
      // The hook kills A, waits until the test has restarted it, then moves the service address.
      const hook = `kill -9 ${t.a.pid}; i=0; while [ ! -e ${flag} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; sleep 2; ${t.lan.moveServiceCommand('A', 'B')}`;
      const migrating = migrate({
        from: t.a.address,
        to: t.b.address,
        pid: t.server.pid,
        netns: t.lan.nsPath(t.lan.ns.B),
        deliverUnixPath: path,
        leaseMs: 8000,
        beforeResume: hook,
      });
      migrating.catch(() => undefined);
      assert.equal(await t.a.waitExit(20_000), 'SIGKILL');
      assert.ok(journal(t.a).length > 0, 'A journaled its session');
      assert.equal(lockEntries(t.lan.ns.A, t.a.lockTable), 3, 'A left its lock entries');
      await t.a.restart();
      client = new SoccrClient(t.a.address);
      const taken = await client.listSessions();
      assert.equal(taken.length, 1);
      assert.equal(taken[0].state, SessionState.FROZEN, 'the restarted source holds the session, frozen');
      assert.equal(lockEntries(t.lan.ns.A, t.a.lockTable), 3, 'and its lock entries');
      writeFileSync(flag, '');

      const report = await migrating;
      assert.ok(
        report.phases.every((ph) => ph.ok),
        `phases: ${JSON.stringify(report.phases)}; warnings: ${report.warnings.join('; ')}`,
      );
      assert.equal((await client.getSession(report.sourceSessionId)).state, SessionState.RELEASED);
      await receiver.waitEvent('handover-live', 15_000);
      await until(() => lockEntries(t.lan.ns.A, t.a.lockTable) === 0 && journal(t.a).length === 0, 5000, 'the grace period on A');
      assertClean(t);
      // The old owner (still stopped) dies without effect; the clients talk to B, exactly.
      t.server.kill();
      await t.server.exited();
      await sleep(500);
      await t.clients.stream(false);
      await receiver.stream(false);
      const [cs] = await untilExchanged(t.clients, receiver, 30_000);
      assert.ok(
        cs.connections.every((c) => c.error === null && !c.eof),
        'no RST or FIN at the clients',
      );
    });

    it('the destination daemon is killed mid-restore: the source goes on, the restarted destination removes its entries', async () => {
      const t = await bench(3, { bEnv: { SOCCRD_CRASH_AT: 'restore.after-first-socket' } });
      await handOff(t);
      await assert.rejects(
        migrate({ from: t.a.address, to: t.b.address, pid: t.server.pid, netns: t.lan.nsPath(t.lan.ns.B), deliverUnixPath: socketPath('x'), leaseMs: 8000 }),
        (err: unknown) => err instanceof MigrateError && err.phase === 'checkpoint+restore',
      );
      assert.equal(await t.b.waitExit(10_000), 'SIGKILL');
      assert.equal(lockEntries(t.lan.ns.B, t.b.lockTable), 3, 'B left its lock entries');
      assert.ok(journal(t.b).length > 0, 'B journaled its lock');
      await t.b.restart();
      await until(() => journal(t.a).length === 0, 5000, "A's journal to empty after the rollback");
      assertClean(t);
      await t.server.resume();
      await sleep(500);
      await t.clients.stream(false);
      await t.server.stream(false);
      const [s] = await untilExchanged(t.server, t.clients, 30_000);
      assert.ok(
        s.connections.every((c) => c.error === null && !c.eof),
        'no RST or FIN',
      );
    });
  });
});
