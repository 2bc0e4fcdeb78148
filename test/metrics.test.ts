// The Prometheus endpoint of a real soccrd process: every counter, gauge and histogram moves by exactly
// what real calls did (a version query, refusals, a checkpoint resumed, one released and restored into
// another namespace, then aborted); the endpoint is off by default and refuses remote addresses unless told.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient, isServiceError } from '../client/client';
import { parseSettings } from '../daemon/main';
import { listTcpSockets } from '../daemon/repair/acquire';
import { FrameMsg, QueueKind } from '../protocol/messages';
import { unpackFrames } from '../protocol/frames';
import { TcpState } from '../protocol/saved-state';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { leftoverNamespaces } from '../lab/netns';
import { connectPair, destroyTopologies, setUp } from '../lab/scenario';

interface Scrape {
  status: number;
  contentType: string;
  text: string;
}

function scrape(address: string, path = '/metrics'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${address}${path}`, { timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 5 s`)));
    req.on('error', reject);
  });
}

/** Samples of the exposition text: name -> [labels, value]. */
function parseSamples(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1], list);
  }
  return out;
}

class Metrics {
  readonly samples: ReturnType<typeof parseSamples>;
  constructor(readonly text: string) {
    this.samples = parseSamples(text);
  }

  /** The sample with exactly these labels (`le` aside for histogram series), 0 when absent. */
  value(name: string, labels: Record<string, string> = {}): number {
    const want = Object.entries(labels);
    const hit = (this.samples.get(name) ?? []).find((s) => Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v));
    return hit?.value ?? 0;
  }

  /** Sum over every label set. */
  total(name: string): number {
    return (this.samples.get(name) ?? []).reduce((a, s) => a + s.value, 0);
  }
}

/** The metrics address the daemon bound (port 0 resolved), from its daemon.json, written once it is bound. */
async function metricsAddress(d: DaemonProcess): Promise<string> {
  const file = join(d.stateDir, 'daemon.json');
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 500 && Date.now() < deadline; i++) {
    try {
      const info = JSON.parse(readFileSync(file, 'utf8')) as { metrics?: string };
      assert.ok(info.metrics, `no metrics address in daemon.json: ${JSON.stringify(info)}`);
      assert.match(info.metrics, /^127\.0\.0\.1:[1-9]\d*$/);
      return info.metrics;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} never appeared`);
}

async function expectStatus(p: Promise<unknown>, code: grpc.status, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isServiceError(err), `${what}: not a gRPC error: ${String(err)}`);
    assert.equal(grpc.status[err.code], grpc.status[code], `${what}: ${err.details}`);
    return true;
  });
}

/** Runs a Checkpoint to its end; returns its frames and the queue bytes they carried, by queue. */
async function checkpointFrames(client: SoccrClient, pid: number, fd: number): Promise<{ frames: FrameMsg[]; recv: number; send: number; sessionId: string }> {
  const frames: FrameMsg[] = [];
  let recv = 0;
  let send = 0;
  for await (const f of client.checkpoint(pid, { fds: [fd] })) {
    for (const frame of unpackFrames(f as FrameMsg)) {
      frames.push(frame);
      if (frame.chunk?.queue === QueueKind.RECV) recv += frame.chunk.data.length;
      if (frame.chunk?.queue === QueueKind.SEND) send += frame.chunk.data.length;
    }
  }
  const sessionId = frames[0]?.session?.sessionId;
  assert.ok(sessionId, 'the stream starts with its session header');
  return { frames, recv, send, sessionId };
}

describe('metrics endpoint', function () {
  this.timeout(120_000);

  afterEach(async function () {
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
  });

  after(() => {
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  it('counts calls, frozen connections, freeze times, queue bytes, lock times and kernel failures exactly', async () => {
    const daemon = await DaemonProcess.start(['--metrics-listen', '127.0.0.1:0', '--lock-grace-ms', '0']);
    const client = new SoccrClient(daemon.address);
    try {
      const address = await metricsAddress(daemon);
      const first = await scrape(address);
      assert.equal(first.status, 200);
      assert.match(first.contentType, /^text\/plain; version=0\.0\.4/);
      const m0 = new Metrics(first.text);
      assert.equal(m0.total('soccrd_grpc_calls_total'), 0, 'no call yet');
      assert.ok(m0.samples.has('soccrd_process_cpu_user_seconds_total'), 'process_ default metrics');
      assert.ok(m0.samples.has('soccrd_nodejs_eventloop_lag_seconds'), 'nodejs_ event-loop lag');
      assert.ok(m0.samples.has('soccrd_nodejs_heap_size_used_bytes'), 'nodejs_ heap');
      assert.equal((await scrape(address, '/')).status, 404);
      assert.equal((await scrape(address, '/metricsx')).status, 404);

      const p = await connectPair('ipv4', 2);
      await setUp(p, TcpState.ESTABLISHED);
      await p.owner.command('quiesce');
      await client.getVersion();
      const noPid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
      await expectStatus(client.listSockets(noPid), grpc.status.NOT_FOUND, 'sockets of a pid that cannot exist');
      // pidfd_getfd fails with EBADF: the one kernel failure of this test.
      const badFd = (async () => {
        for await (const _frame of client.checkpoint(p.owner.pid, { fds: [999_999] })) {
          // drained: only the call's status matters
        }
      })();
      await expectStatus(badFd, grpc.status.NOT_FOUND, 'checkpoint of an fd not open');

      const ck1 = await checkpointFrames(client, p.owner.pid, p.owner.connectedFd);
      assert.ok(ck1.recv > 0 && ck1.send > 0, `both queues hold bytes (${ck1.recv}, ${ck1.send})`);
      const m1 = new Metrics((await scrape(address)).text);
      assert.equal(m1.value('soccrd_frozen_connections', { kind: 'source' }), 1, 'frozen while the session holds it');
      assert.equal(m1.value('soccrd_frozen_connections', { kind: 'restore' }), 0);
      assert.equal(m1.value('soccrd_sessions', { kind: 'source', state: 'FROZEN' }), 1);
      assert.equal(m1.value('soccrd_queue_bytes_total', { direction: 'checkpoint', queue: 'recv' }), ck1.recv);
      assert.equal(m1.value('soccrd_queue_bytes_total', { direction: 'checkpoint', queue: 'send' }), ck1.send);
      assert.equal(m1.value('soccrd_network_lock_duration_seconds_count', { op: 'lock' }), 1);
      assert.equal(m1.value('soccrd_network_lock_duration_seconds_count', { op: 'unlock' }), 0);
      assert.equal(m1.value('soccrd_freeze_duration_seconds_count', { kind: 'source', outcome: 'RESUMED' }), 0, 'not thawed yet');

      await client.resume(ck1.sessionId);
      const m2 = new Metrics((await scrape(address)).text);
      assert.equal(m2.value('soccrd_frozen_connections', { kind: 'source' }), 0, 'nothing frozen after Resume');
      assert.equal(m2.value('soccrd_sessions', { kind: 'source', state: 'RESUMED' }), 1);
      assert.equal(m2.value('soccrd_freeze_duration_seconds_count', { kind: 'source', outcome: 'RESUMED' }), 1);
      const frozeFor = m2.value('soccrd_freeze_duration_seconds_sum', { kind: 'source', outcome: 'RESUMED' });
      assert.ok(frozeFor > 0 && frozeFor < 60, `freeze of ${frozeFor} s`);
      assert.equal(m2.value('soccrd_network_lock_duration_seconds_count', { op: 'unlock' }), 1);
      assert.ok(m2.value('soccrd_network_lock_duration_seconds_sum', { op: 'lock' }) > 0, 'lock time observed');

      // Checkpointed again, released, restored (held) into the other host, then aborted there.
      const ck2 = await checkpointFrames(client, p.owner.pid, p.owner.connectedFd);
      assert.equal((await client.release(ck2.sessionId)).state, SessionState.RELEASED);
      const restored = await client.restore({ netns: p.topo.nsPath(p.topo.hosts[1]) }, ck2.frames);
      assert.equal(restored.state, SessionState.HELD);
      const m3 = new Metrics((await scrape(address)).text);
      assert.equal(m3.value('soccrd_frozen_connections', { kind: 'restore' }), 1, 'a held restore is frozen');
      assert.equal(m3.value('soccrd_frozen_connections', { kind: 'source' }), 0, 'a released source is no longer held');
      assert.equal(m3.value('soccrd_freeze_duration_seconds_count', { kind: 'source', outcome: 'RELEASED' }), 1);
      assert.equal(m3.value('soccrd_queue_bytes_total', { direction: 'checkpoint', queue: 'recv' }), ck1.recv + ck2.recv);
      assert.equal(m3.value('soccrd_queue_bytes_total', { direction: 'checkpoint', queue: 'send' }), ck1.send + ck2.send);
      assert.equal(m3.value('soccrd_queue_bytes_total', { direction: 'restore', queue: 'recv' }), ck2.recv);
      assert.equal(m3.value('soccrd_queue_bytes_total', { direction: 'restore', queue: 'send' }), ck2.send);
      await client.abort(restored.sessionId);

      const m4 = new Metrics((await scrape(address)).text);
      assert.equal(m4.value('soccrd_frozen_connections', { kind: 'restore' }), 0);
      assert.equal(m4.value('soccrd_freeze_duration_seconds_count', { kind: 'restore', outcome: 'ABORTED' }), 1);
      assert.equal(m4.total('soccrd_freeze_duration_seconds_count'), 3, 'one observation per session ended');
      // Locks: two checkpoints and the restore; unlocks: resume, release (no grace) and abort.
      assert.equal(m4.value('soccrd_network_lock_duration_seconds_count', { op: 'lock' }), 3);
      assert.equal(m4.value('soccrd_network_lock_duration_seconds_count', { op: 'unlock' }), 3);

      const calls: Array<[string, string, number]> = [
        ['GetVersion', 'OK', 1],
        ['ListSockets', 'NOT_FOUND', 1],
        ['Checkpoint', 'NOT_FOUND', 1],
        ['Checkpoint', 'OK', 2],
        ['Resume', 'OK', 1],
        ['Release', 'OK', 1],
        ['Restore', 'OK', 1],
        ['Abort', 'OK', 1],
      ];
      for (const [method, code, n] of calls) assert.equal(m4.value('soccrd_grpc_calls_total', { method, code }), n, `${method} ${code}`);
      assert.equal(m4.total('soccrd_grpc_calls_total'), 9, 'no other call counted');
      for (const method of new Set(calls.map((c) => c[0]))) {
        const n = calls.filter((c) => c[0] === method).reduce((a, c) => a + c[2], 0);
        assert.equal(m4.value('soccrd_grpc_call_duration_seconds_count', { method }), n, `${method} duration observations`);
      }
      assert.equal(m4.value('soccrd_syscall_errors_total', { syscall: 'pidfd_getfd', errno: 'EBADF' }), 1);
      assert.equal(m4.total('soccrd_syscall_errors_total'), 1, 'probes and fs errors are not counted');
    } finally {
      client.close();
    }
  });

  it('is off by default, loopback only unless allowed, and read from the config file too', async () => {
    const daemon = await DaemonProcess.start();
    const tcp = listTcpSockets(daemon.pid).filter((s) => s.state === TcpState.LISTEN);
    assert.deepEqual(tcp, [], 'a daemon without --metrics-listen listens on no TCP port');
    const info = JSON.parse(readFileSync(join(daemon.stateDir, 'daemon.json'), 'utf8')) as { metrics?: string };
    assert.equal(info.metrics, undefined);

    await assert.rejects(DaemonProcess.start(['--metrics-listen', '0.0.0.0:0']), (err: Error) => {
      assert.match(err.message, /exited at start/);
      assert.match(err.message, /metrics have no authentication.*--metrics-allow-remote/);
      return true;
    });
    const argv = (...a: string[]): string[] => ['node', 'soccrd', ...a];
    assert.throws(() => parseSettings(argv('--metrics-listen', '10.1.2.3:9100')), /--metrics-allow-remote/);
    assert.throws(() => parseSettings(argv('--metrics-listen', 'localhost:9100')), /loopback/, 'names are not resolved');
    assert.equal(parseSettings(argv('--metrics-listen', '10.1.2.3:9100', '--metrics-allow-remote')).metricsListen, '10.1.2.3:9100');
    assert.equal(parseSettings(argv('--metrics-listen', '[::1]:9100')).metricsListen, '[::1]:9100');
    assert.equal(parseSettings(argv()).metricsListen, undefined);
    const config = join(daemon.dir, 'config.json');
    writeFileSync(config, JSON.stringify({ metricsListen: '127.0.0.2:9100' }));
    assert.equal(parseSettings(argv('--config', config)).metricsListen, '127.0.0.2:9100');
    writeFileSync(config, JSON.stringify({ metricsListen: '192.0.2.1:9100' }));
    assert.throws(() => parseSettings(argv('--config', config)), /--metrics-allow-remote/);
    writeFileSync(config, JSON.stringify({ metricsListen: '192.0.2.1:9100', metricsAllowRemote: true }));
    assert.equal(parseSettings(argv('--config', config)).metricsListen, '192.0.2.1:9100');
  });

  it('a daemon that cannot serve its metrics stops, and leaves no network-lock table behind', async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this host: the bind fails after the lock table was made.
    const table = `soccrt${process.pid}m`;
    await assert.rejects(DaemonProcess.start(['--metrics-listen', '192.0.2.1:9100', '--metrics-allow-remote', '--lock-table', table]), (err: Error) => {
      assert.match(err.message, /exited at start/);
      assert.match(err.message, /cannot serve metrics on 192\.0\.2\.1:9100/);
      return true;
    });
    const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;
    assert.ok(!tables.includes(table), `the lock table ${table} is gone:\n${tables}`);
  });
});
