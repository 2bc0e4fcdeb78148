// The direct data path: the source daemon writes the frames straight to the destination daemon's data
// endpoint, sealed under a key the orchestrator minted. Two real daemons in host namespaces A and B of a
// LAN, connections streaming both ways from a client namespace; every outcome checked on the real
// kernel (bytes exactly once both ways, no RST, no FIN, no lock entry or session left).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MigrateError, migrate } from '../client/migrate';
import { SessionState, SoccrClient } from '../client/client';
import type { RestoreOptions } from '../client/client';
import type { DataSenderAction } from './fixtures/data-sender';
import { DaemonProcess, daemonLogs } from '../lab/daemon';
import { LAN_NODES, leftoverLanNamespaces } from '../lab/lan';
import { MigrationLab, labLockEntries, resumeAtSource, startMigrationLab, tearDownLabs } from './support/migration-lab';
import { MultiFixture, exchangeProblems, untilExchanged } from '../lab/multi';
import { lockEntries } from '../lab/netns';
import { sleep, socketPath } from '../lab/scenario';

type Setup = MigrationLab;

/** A and B, B taking direct transfers on `dataListen`; `count` connections streaming both ways, both queues filled. */
const setup = (count: number, dataListen = `${LAN_NODES.B.v4}:0`): Promise<Setup> =>
  startMigrationLab(count, { bArgs: ['--data-listen', dataListen], burstBytes: 2 * 1024 * 1024 });

/** After a refused or abandoned transfer: the old owner goes on, exact bytes, nothing left on either side. */
async function assertSurvivedAtSource(t: Setup): Promise<void> {
  for (const [name, d] of [
    ['A', t.a],
    ['B', t.b],
  ] as const) {
    const c = new SoccrClient(d.address);
    try {
      const active = (await c.listSessions()).filter((s) => s.state === SessionState.FROZEN || s.state === SessionState.HELD);
      assert.deepEqual(
        active.map((s) => s.sessionId),
        [],
        `sessions left frozen or held on ${name}`,
      );
    } finally {
      c.close();
    }
  }
  const [s, c] = await resumeAtSource(t);
  assert.deepEqual(exchangeProblems(s, c), []);
  assert.ok(
    s.connections.every((x) => x.error === null && !x.eof),
    'no RST, no FIN at the source',
  );
  const left = labLockEntries(t);
  assert.equal(left.a, 0, 'lock entries left on A');
  assert.equal(left.b, 0, 'lock entries left on B');
}

async function dataEndpoint(d: DaemonProcess): Promise<string> {
  const c = new SoccrClient(d.address);
  try {
    return (await c.getVersion()).dataEndpoint;
  } finally {
    c.close();
  }
}

const DATA_SENDER = join(__dirname, 'fixtures', 'data-sender.js');

/** Runs the data-sender fixture inside namespace `ns` (where the destination's endpoint is reachable). */
function dataSender(ns: string, action: DataSenderAction): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, DATA_SENDER, JSON.stringify(action)], { timeout: 30_000 }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        reject(new Error(`data-sender ${action.action}: ${err?.message ?? ''} ${stdout}`));
      }
    });
  });
}

/** A real Checkpoint of the server's connections on A, its frames written to a file as checkpoint files hold them. */
async function checkpointToFramesFile(t: Setup, dir: string): Promise<{ file: string; sourceId: string }> {
  const src = new SoccrClient(t.a.address);
  try {
    const file = join(dir, 'frames.soccr');
    const r = await src.checkpointToFile(t.server.pid, { all: true, stopOwner: true, leaseMs: 60_000 }, file);
    return { file, sourceId: r.header.sessionId };
  } finally {
    src.close();
  }
}

const hex = (n: number): string => randomBytes(n).toString('hex');

interface FrozenSource {
  t: Setup;
  /** B's data endpoint */
  endpoint: string;
  /** the frames of the source's checkpoint, as a checkpoint file */
  file: string;
  dst: SoccrClient;
  /** held Restore options into B taking the frames from transfer `id` (hex) with `key` (hex) */
  restoreOptions: (id: string, key: string, timeoutMs?: number) => RestoreOptions;
}

/**
 * Three connections streaming both ways, checkpointed on A (frozen, their frames in a file) for `fn`
 * to feed to B as a source would; then the source session is resumed and the connections must go on
 * there with nothing left on either side.
 */
async function withFrozenSource(fn: (s: FrozenSource) => Promise<void>): Promise<void> {
  const t = await setup(3);
  await t.server.quiesce();
  const endpoint = await dataEndpoint(t.b);
  const dir = mkdtempSync(join(tmpdir(), 'soccrt-dp'));
  const dst = new SoccrClient(t.b.address);
  const src = new SoccrClient(t.a.address);
  try {
    const { file, sourceId } = await checkpointToFramesFile(t, dir);
    const restoreOptions = (id: string, key: string, timeoutMs = 0): RestoreOptions => ({
      netns: t.lan.nsPath(t.lan.ns.B),
      transparent: true,
      leaseMs: 60_000,
      dataTransfer: { transferId: Buffer.from(id, 'hex'), key: Buffer.from(key, 'hex'), timeoutMs },
    });
    await fn({ t, endpoint, file, dst, restoreOptions });
    await src.resume(sourceId);
  } finally {
    dst.close();
    src.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await assertSurvivedAtSource(t);
}

describe('direct data path between daemons', function () {
  this.timeout(180_000);

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await tearDownLabs();
  });

  after(() => {
    assert.deepEqual(leftoverLanNamespaces(), [], 'namespaces left behind');
  });

  it('migrate() sends the frames from A straight to B; streams both ways arrive exactly, no RST, no FIN', async () => {
    const t = await setup(20);
    const endpoint = await dataEndpoint(t.b);
    assert.match(endpoint, /^10\.79\.0\.2:\d+$/, 'B advertises its data endpoint');
    const { offsets } = await t.server.quiesce();
    const path = socketPath('deliver');
    const receiver = await MultiFixture.start(t.lan.ns.B, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: 8 * 1024 });
    const report = await migrate({
      from: t.a.address,
      to: t.b.address,
      pid: t.server.pid,
      netns: t.lan.nsPath(t.lan.ns.B),
      deliverUnixPath: path,
      beforeResume: t.lan.moveServiceCommand('A', 'B'),
    });
    assert.equal(report.transport, 'direct');
    assert.equal(report.connections, 20);
    assert.ok(report.queueBytes > 1024 * 1024, `queues carried bytes (${report.queueBytes})`);
    assert.match(t.b.output, /data connection accepted/);
    process.stdout.write(`      20 connections, ${(report.queueBytes / 1048576).toFixed(1)} MiB of queues: freeze ${report.freezeMs} ms\n`);
    await receiver.waitEvent('handover-live', 15_000);
    await sleep(1000);
    t.server.kill();
    await t.server.exited();
    await t.clients.stream(false);
    await receiver.stream(false);
    const [cs, rs] = await untilExchanged(t.clients, receiver, 60_000);
    assert.equal(cs.connections.length, 20);
    assert.deepEqual(exchangeProblems(cs, rs), []);
    assert.ok(
      cs.connections.every((c) => c.error === null && !c.eof),
      'the clients saw no RST and no FIN',
    );
    assert.ok(
      rs.connections.every((c) => c.received > 0),
      'every connection carried traffic after the move',
    );
    assert.equal(lockEntries(t.lan.ns.B, t.b.lockTable), 0, 'B unlocked when it went live');
  });

  it('refuses data connections with a wrong key or transfer id, and a second one with the right key; the real one completes', async () => {
    await withFrozenSource(async ({ t, endpoint, file, dst, restoreOptions }) => {
      const transferId = hex(16);
      const key = hex(32);
      // Long enough for the impostors to be refused first (a transfer id nobody awaits is held 5 s).
      const restored = dst.restore(restoreOptions(transferId, key, 30_000), []);
      const base = { endpoint, transferId, key };
      const [wrongKey, wrongId] = await Promise.all([
        dataSender(t.lan.ns.A, { ...base, action: 'impostor', key: hex(32) }),
        dataSender(t.lan.ns.A, { ...base, action: 'impostor', transferId: hex(16) }),
      ]);
      assert.deepEqual(wrongKey, { closed: true }, 'a hello under the wrong key is refused');
      assert.deepEqual(wrongId, { closed: true }, 'a transfer id nobody awaits is refused');
      // The real source holds its connection open a moment after its hello: a second one with the
      // right key comes meanwhile.
      const real = dataSender(t.lan.ns.A, { ...base, action: 'send', framesFile: file, holdMs: 2500 });
      await sleep(1000);
      const second = await dataSender(t.lan.ns.A, { ...base, action: 'impostor' });
      assert.deepEqual(second, { closed: true }, 'a second connection with the right key is refused');
      assert.ok(typeof (await real).sent === 'number', 'the real source sent its frames');
      const held = await restored;
      assert.equal(held.state, SessionState.HELD);
      assert.equal(held.connections.length, 3);
      await dst.abort(held.sessionId);
      assert.match(t.b.output, /data connection refused/);
    });
  });

  it('a tampered record ends the restore with DATA_LOSS, a source gone mid-stream and a connection that never comes with UNAVAILABLE', async () => {
    await withFrozenSource(async ({ t, endpoint, file, dst, restoreOptions }) => {
      const code = (p: Promise<unknown>): Promise<number> =>
        p.then(
          () => grpc.status.OK,
          (err: unknown) => (err as grpc.ServiceError).code,
        );
      // A record whose ciphertext was changed on the way.
      let id = hex(16);
      let key = hex(32);
      let restored = dst.restore(restoreOptions(id, key), []);
      const tamper = dataSender(t.lan.ns.A, { action: 'tamper', endpoint, transferId: id, key });
      assert.equal(await code(restored), grpc.status.DATA_LOSS);
      assert.deepEqual(await tamper, { closed: true });
      // The source goes away after the session header and the first connection's header.
      id = hex(16);
      key = hex(32);
      restored = dst.restore(restoreOptions(id, key), []);
      await dataSender(t.lan.ns.A, { action: 'partial', endpoint, transferId: id, key, framesFile: file });
      assert.equal(await code(restored), grpc.status.UNAVAILABLE);
      // Nobody connects.
      const started = Date.now();
      assert.equal(await code(dst.restore(restoreOptions(hex(16), hex(32), 500), [])), grpc.status.UNAVAILABLE);
      assert.ok(Date.now() - started < 5000, 'the wait for the data connection is bounded');
    });
  });

  it('a source that cannot reach the endpoint fails the migration cleanly: nothing frozen, locked or held', async () => {
    // B listens on its own loopback: the endpoint it advertises leads nowhere from A.
    const t = await setup(3, '127.0.0.1:0');
    const { offsets } = await t.server.quiesce();
    const path = socketPath('deliver');
    await MultiFixture.start(t.lan.ns.B, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: 8 * 1024 });
    await assert.rejects(
      migrate({ from: t.a.address, to: t.b.address, pid: t.server.pid, netns: t.lan.nsPath(t.lan.ns.B), deliverUnixPath: path }),
      (err: unknown) => {
        assert.ok(err instanceof MigrateError, String(err));
        assert.equal(err.phase, 'checkpoint+restore');
        assert.match(err.reason, /source Checkpoint: UNAVAILABLE: .*data endpoint/);
        return true;
      },
    );
    await assertSurvivedAtSource(t);
  });
});
