// Live migration end to end: two hosts and a client namespace on one bridge, a soccrd inside each host
// namespace, connections whose client side never stops streaming, `soccrctl migrate` moving them from
// A to B while its hook moves the service address and announces it. Then every abort path.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFile } from 'node:child_process';
import { join } from 'node:path';
import { MigrateError, migrate } from '../client/migrate';
import { daemonLogs } from '../lab/daemon';
import { LAN_DEV, leftoverLanNamespaces } from '../lab/lan';
import { MigrationLab, labLockEntries, resumeAtSource, startMigrationLab, tearDownLabs } from './support/migration-lab';
import { MultiFixture, MultiStatus, exchangeProblems, untilExchanged } from '../lab/multi';
import { lockEntries, run } from '../lab/netns';
import { sleep, socketPath } from '../lab/scenario';

const SOCCRCTL = join(__dirname, '..', 'client', 'soccrctl.js');
type Bench = MigrationLab;
const bench = (count: number): Promise<Bench> => startMigrationLab(count);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function soccrctl(args: string[], onSpawn?: (p: ChildProcess) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = execFile(process.execPath, [SOCCRCTL, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    onSpawn?.(p);
  });
}

/** `soccrctl migrate` arguments moving the bench's server from A to B, delivering to `path`, with `hook`. */
function migrateArgs(t: Bench, path: string, hook: string, ...extra: string[]): string[] {
  return [
    'migrate',
    '--from',
    t.a.address,
    '--to',
    t.b.address,
    '--pid',
    String(t.server.pid),
    '--netns',
    t.lan.nsPath(t.lan.ns.B),
    '--deliver',
    `unix:${path}`,
    ...extra,
    '--before-resume',
    hook,
  ];
}

/** The server application's own hand-over: it stops its I/O and tells how far each connection got. */
async function handOffApplication(t: Bench): Promise<{ receiver: MultiFixture; path: string; before: MultiStatus }> {
  const { status, offsets } = await t.server.quiesce();
  const path = socketPath('deliver');
  const receiver = await MultiFixture.start(t.lan.ns.B, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: 8 * 1024 });
  return { receiver, path, before: status };
}

/** After an abort: the old owner goes on, every connection carries exact bytes, no lock entry left. */
async function assertSurvivedAtSource(t: Bench): Promise<void> {
  const [s] = await resumeAtSource(t);
  assert.ok(s.connections.every((c) => c.error === null && !c.eof));
  const left = labLockEntries(t);
  assert.equal(left.a, 0, 'lock entries left on A');
  assert.equal(left.b, 0, 'lock entries left on B');
}

describe('live migration between hosts with traffic flowing', function () {
  this.timeout(180_000);

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await tearDownLabs();
  });

  after(() => {
    assert.deepEqual(leftoverLanNamespaces(), [], 'namespaces left behind');
  });

  it('soccrctl migrate moves a streaming connection from A to B; the client never notices', async () => {
    const t = await bench(1);
    const retransBefore = (await t.clients.status()).connections[0].totalRetrans;
    const { receiver, path } = await handOffApplication(t);
    const r = await soccrctl(['--json', ...migrateArgs(t, path, t.lan.moveServiceCommand('A', 'B'))]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { connections: number; freezeMs: number; phases: Array<{ name: string; ms: number }> };
    assert.equal(report.connections, 1);
    assert.deepEqual(
      report.phases.map((p) => p.name),
      ['checkpoint+restore', 'hook', 'resume-destination', 'release-source'],
    );
    process.stdout.write(`      freeze ${report.freezeMs} ms; ${report.phases.map((p) => `${p.name} ${p.ms} ms`).join(', ')}\n`);
    await receiver.waitEvent('handover-live', 15_000);

    // Traffic goes on from B, both ways.
    const c0 = await t.clients.status();
    await sleep(1500);
    const c1 = await t.clients.status();
    assert.ok(c1.totals.received > c0.totals.received, 'the client receives from B');
    assert.ok((await receiver.status()).totals.received > 0, 'B receives from the client');
    // A's old owner dies without effect on the connection.
    t.server.kill();
    await t.server.exited();
    await sleep(300);
    await t.clients.stream(false);
    await receiver.stream(false);
    const [cs] = await untilExchanged(t.clients, receiver, 30_000);
    const conn = cs.connections[0];
    assert.equal(conn.error, null, 'the client saw no RST');
    assert.equal(conn.eof, false, 'the client saw no FIN');
    assert.ok(conn.totalRetrans > retransBefore, 'what the client sent during the freeze was dropped and retransmitted');
    assert.equal(lockEntries(t.lan.ns.B, t.b.lockTable), 0, 'B unlocked when it went live');
  });

  it('migrates 100 connections of one process in one call, all verified', async () => {
    const t = await bench(100);
    const { receiver, path } = await handOffApplication(t);
    const report = await migrate({
      from: t.a.address,
      to: t.b.address,
      pid: t.server.pid,
      netns: t.lan.nsPath(t.lan.ns.B),
      deliverUnixPath: path,
      beforeResume: t.lan.moveServiceCommand('A', 'B'),
    });
    assert.equal(report.connections, 100);
    process.stdout.write(`      100 connections: freeze ${report.freezeMs} ms, total ${report.totalMs} ms\n`);
    await receiver.waitEvent('handover-live', 15_000);
    await sleep(1000);
    t.server.kill();
    await t.clients.stream(false);
    await receiver.stream(false);
    const [cs, rs] = await untilExchanged(t.clients, receiver, 60_000);
    assert.equal(cs.connections.length, 100);
    assert.deepEqual(exchangeProblems(cs, rs), []);
    assert.ok(
      rs.connections.every((c) => c.received > 0),
      'every connection carried traffic after the move',
    );
  });

  describe('aborts: the connections keep working at the source, no lock entry is left', () => {
    it('the destination refuses the restore', async () => {
      const t = await bench(3);
      await handOffApplication(t);
      await assert.rejects(
        migrate({ from: t.a.address, to: t.b.address, pid: t.server.pid, netns: '/run/netns/no-such-namespace', deliverUnixPath: socketPath('x') }),
        (err: unknown) => err instanceof MigrateError && err.phase === 'checkpoint+restore',
      );
      await assertSurvivedAtSource(t);
    });

    it('the destination lacks the interface the connections are bound to (SO_BINDTODEVICE): FAILED_PRECONDITION naming it, before anything goes live', async () => {
      const t = await startMigrationLab(3, { device: LAN_DEV });
      // B's interface of that name gets another one: B has the address, but no interface called so.
      run('ip', ['-n', t.lan.ns.B, 'link', 'set', LAN_DEV, 'down']);
      run('ip', ['-n', t.lan.ns.B, 'link', 'set', LAN_DEV, 'name', 'lan1']);
      run('ip', ['-n', t.lan.ns.B, 'link', 'set', 'lan1', 'up']);
      const { path } = await handOffApplication(t);
      const r = await soccrctl(migrateArgs(t, path, 'true'));
      assert.equal(r.code, 64 + 9, `FAILED_PRECONDITION (64 + 9): ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`FAILED_PRECONDITION: .*no interface ${LAN_DEV}\\b`));
      await assertSurvivedAtSource(t);
    });

    it('the hook fails', async () => {
      const t = await bench(3);
      const { path } = await handOffApplication(t);
      const r = await soccrctl(migrateArgs(t, path, 'exit 3'));
      assert.equal(r.code, 1, 'a failed hook has no gRPC status');
      assert.match(r.stderr, /migrate failed in hook/);
      await assertSurvivedAtSource(t);
    });

    it('the orchestrator is killed mid-stream', async () => {
      const t = await bench(3);
      // Fill the queues so the stream takes a moment.
      await t.server.write(4 * 1024 * 1024);
      await sleep(200);
      const { path } = await handOffApplication(t);
      let child: ChildProcess | undefined;
      const done = soccrctl(migrateArgs(t, path, 'sleep 8', '--lease-ms', '3000'), (p) => {
        child = p;
      });
      // Killed once the hook runs: the checkpoint and held restore exist on both sides.
      const deadline = Date.now() + 20_000;
      while (!t.a.output.includes('checkpoint streamed') && Date.now() < deadline) await sleep(20);
      process.kill(child?.pid as number, 'SIGKILL');
      await done;
      // Nobody releases or resumes: the leases end, the source resumes, the destination closes silently.
      const until = Date.now() + 20_000;
      while (Date.now() < until && !t.a.output.includes('lease ended')) await sleep(200);
      assert.match(t.a.output, /lease ended/, 'the source lease ended');
      await assertSurvivedAtSource(t);
    });

    it('the destination daemon is killed', async () => {
      const t = await bench(3);
      const { path } = await handOffApplication(t);
      const r = await soccrctl(migrateArgs(t, path, `kill -9 ${t.b.pid}`));
      assert.equal(r.code, 78, 'UNAVAILABLE (64 + 14): the destination did not answer');
      assert.match(r.stderr, /migrate failed in resume-destination/);
      // The killed daemon's entries go when it starts again on its state directory: it reconciles its table.
      await t.b.restart();
      assert.equal(lockEntries(t.lan.ns.B, t.b.lockTable), 0, 'a restarted daemon drops stale lock entries');
      await assertSurvivedAtSource(t);
    });
  });
});
