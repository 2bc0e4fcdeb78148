// migrate() and `soccrctl migrate` against two stand-in daemons in this process (test/support/standin.ts):
// the order of the phases and of the calls each daemon receives, the options passed on, a 200 MiB
// checkpoint streamed into the restore with flat memory, and the rollback of each failure (hook,
// destination Restore, source Checkpoint, destination Resume) down to which calls were made. Needs no
// privileges and no network lock: the real thing is tested end to end elsewhere.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MigrateError, MigrateOptions, MigrateReport, RESUME_DEADLINE_MS, SoccrError, migrate } from '../client';
import { CallRecord, MiB, StandInDaemon, bulkLocalPort, conn, withQueues } from './support/standin';
import type { ErrorReport } from '../client/cli/failure';

const CLI = path.resolve(__dirname, '..', 'client', 'soccrctl.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** soccrctl as a child process, asynchronously (the stand-ins answer from this process). */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, SOCCRD_ADDRESS: '' }, maxBuffer: 16 * MiB, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Whether a process is gone (or a zombie nobody reaped yet). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function rejectsWith(p: Promise<unknown>): Promise<MigrateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MigrateError, `expected a MigrateError, got ${String(err)}`);
    return err;
  }
  assert.fail('migrate succeeded');
}

/** The stand-in source's Checkpoint call (migrate makes a GetVersion call first). */
function checkpointCall(d: StandInDaemon): CallRecord {
  const c = d.calls.find((r) => r.method === 'Checkpoint');
  assert.ok(c, 'no Checkpoint call');
  return c;
}

describe('migrate (two stand-in daemons)', function () {
  let dir: string;
  const log: string[] = [];
  let src: StandInDaemon;
  let dst: StandInDaemon;
  const q = { a: randomBytes(5000), b: randomBytes(3 * MiB + 7), c: randomBytes(2 * MiB) };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'soccr-migrate-'));
    src = new StandInDaemon(path.join(dir, 'src.sock'), 'src', log);
    dst = new StandInDaemon(path.join(dir, 'dst.sock'), 'dst', log);
    await Promise.all([src.start(), dst.start()]);
  });
  after(async () => {
    await Promise.all([src.stop(), dst.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    src.reset();
    dst.reset();
    log.length = 0;
    src.checkpointConns = [
      { id: '3:1', fd: 3, state: withQueues(conn(), q.a, q.b, 100) },
      { id: '5:2', fd: 5, state: withQueues(conn({ local: { family: 'ipv4', ip: '10.1.2.3', port: 43211 } }), Buffer.alloc(0), q.c) },
    ];
  });

  const base = (): MigrateOptions => ({ from: src.address, to: dst.address, pid: 77 });
  const sessionState = (d: StandInDaemon, id: string): number | undefined => d.sessions.get(id)?.state;

  describe('the library', function () {
    it('refuses before freezing anything when the destination does not read the format the source writes (a rolling upgrade)', async function () {
      src.streamFormat = 2;
      src.streamFormatsRead = [1, 2];
      dst.streamFormatsRead = [1]; // an older destination
      const err = await migrate(base()).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof MigrateError, `a MigrateError, not ${String(err)}`);
      assert.match(err.reason, /destination daemon \(soccrd 9\.9\.9-fake\) reads stream format 1, the source .* writes 2: upgrade the destination first/);
      assert.equal(err.cause instanceof SoccrError ? err.cause.kind : undefined, 'TARGET_STATE');
      assert.deepEqual(err.rolledBack, []);
      const calls = log.filter((l) => !l.includes('GetVersion'));
      assert.deepEqual(calls, [], 'no call but GetVersion reached either daemon: nothing frozen');
      // A destination older than the list (it names none) reads the one it writes: format 1 goes through.
      src.streamFormat = 1;
      dst.streamFormatsRead = [];
      const r = await migrate(base());
      assert.equal(r.connections, 2);
    });

    it('runs the phases in order and passes the options on to both daemons', async function () {
      const r = await migrate({
        ...base(),
        fds: [3, 5],
        netns: '/run/netns/blue',
        deliverUnixPath: '/run/app.sock',
        leaseMs: 20000,
        beforeResume:
          'echo "src=$SOCCR_SOURCE_SESSION dst=$SOCCR_DEST_SESSION pid=$SOCCR_PID"; echo "$SOCCR_CONNECTIONS"; ' +
          'printf %s "$SOCCR_CONNECTIONS" | cmp -s "$SOCCR_CONNECTIONS_FILE" - || echo file-differs; echo to-stderr >&2',
        onPhase: (e) => log.push(`phase ${e.name} ${e.status}`),
      });

      const calls = log.filter((l) => !l.includes('RenewLease'));
      // both daemons are reached (a first call on each) before the first phase, and so before
      // anything freezes; then the two streaming calls start together, in either order
      assert.deepEqual(calls.slice(0, 2).sort(), ['dst GetVersion', 'src GetVersion']);
      assert.deepEqual(calls.slice(2, 3), ['phase checkpoint+restore started']);
      assert.deepEqual(calls.slice(3, 5).sort(), ['dst Restore', 'src Checkpoint']);
      assert.deepEqual(calls.slice(5), [
        'phase checkpoint+restore completed',
        'phase hook started',
        'phase hook completed',
        'phase resume-destination started',
        'dst Resume rst-1',
        'phase resume-destination completed',
        'phase release-source started',
        'src Release src-77',
        'phase release-source completed',
      ]);

      assert.deepEqual(checkpointCall(src).request, {
        pid: 77,
        fds: [3, 5],
        all: false,
        options: { leaseMs: 20000, noNetworkLock: false, stopOwner: true, allowPartial: false, takeBacklog: false },
        dataTransfer: null,
      });
      assert.deepEqual(dst.restored?.options, {
        netns: '/run/netns/blue',
        deliverUnixPath: '/run/app.sock',
        goLive: false,
        transparent: true,
        leaseMs: 20000,
        noNetworkLock: false,
        dataTransfer: null,
      });
      // the queues arrived intact
      assert.ok(dst.restored?.connections[0].state.recvQueue.equals(q.a));
      assert.ok(dst.restored?.connections[0].state.sendQueue.equals(q.b));
      assert.ok(dst.restored?.connections[1].state.sendQueue.equals(q.c));
      assert.equal(sessionState(src, 'src-77'), 4, 'source RELEASED');
      assert.equal(sessionState(dst, 'rst-1'), 3, 'destination RESUMED');

      assert.equal(r.sourceSessionId, 'src-77');
      assert.equal(r.destinationSessionId, 'rst-1');
      assert.equal(r.connections, 2);
      assert.equal(r.queueBytes, q.a.length + q.b.length + q.c.length);
      assert.deepEqual(
        r.phases.map((p) => [p.name, p.ok]),
        [
          ['checkpoint+restore', true],
          ['hook', true],
          ['resume-destination', true],
          ['release-source', true],
        ],
      );
      for (const p of r.phases) assert.ok(p.ms >= 0 && p.startedAt > Date.now() - 60000);
      // The freeze starts inside the first phase (just before the Checkpoint call, after the phase's own
      // set-up) and ends inside the third (the Resume's answer): within the three phases, around the hook.
      const frozenPhases = r.phases.slice(0, 3).reduce((n, p) => n + p.ms, 0);
      const hookMs = r.phases[1].ms;
      assert.ok(
        r.freezeMs <= frozenPhases + 1 && r.freezeMs >= hookMs && r.freezeMs <= r.totalMs,
        `freeze ${r.freezeMs} ms, phases ${frozenPhases} ms (hook ${hookMs}), total ${r.totalMs} ms`,
      );
      assert.deepEqual(r.warnings, []);

      const addresses = [
        { local: { family: 'ipv4', ip: '10.1.2.3', port: 43210 }, remote: { family: 'ipv4', ip: '192.168.200.7', port: 443 } },
        { local: { family: 'ipv4', ip: '10.1.2.3', port: 43211 }, remote: { family: 'ipv4', ip: '192.168.200.7', port: 443 } },
      ];
      assert.deepEqual(r.addresses, addresses);
      const h = r.hook;
      assert.ok(h);
      assert.equal(h.exitCode, 0);
      assert.equal(h.timedOut, false);
      const [first, json, ...rest] = h.stdout.trimEnd().split('\n');
      assert.equal(first, 'src=src-77 dst=rst-1 pid=77');
      assert.deepEqual(JSON.parse(json), addresses);
      assert.deepEqual(rest, [], h.stdout);
      assert.equal(h.stderr, 'to-stderr\n');
    });

    it('passes no_network_lock to both sides and leaves the owner running when told; addresses from the connection headers', async function () {
      src.checkpointBulk = [1000, 0];
      dst.keepQueues = false;
      const r = await migrate({ ...base(), networkLock: false, stopOwner: false, beforeResume: 'printf %s "$SOCCR_CONNECTIONS"' });
      assert.deepEqual(checkpointCall(src).request, {
        pid: 77,
        fds: [],
        all: true,
        options: { leaseMs: 0, noNetworkLock: true, stopOwner: false, allowPartial: false, takeBacklog: true },
        dataTransfer: null,
      });
      assert.equal(dst.restored?.options.noNetworkLock, true);
      assert.equal(dst.restored?.options.transparent, true);
      assert.equal(r.connections, 2);
      assert.equal(r.queueBytes, 1000);
      // the session header of this stream has no tuples: the connection headers give the addresses
      const expected = [0, 1].map((i) => ({
        local: { family: 'ipv4', ip: '10.1.2.3', port: bulkLocalPort(i) },
        remote: { family: 'ipv4', ip: '192.168.200.7', port: 443 },
      }));
      assert.deepEqual(r.addresses, expected);
      assert.deepEqual(JSON.parse(r.hook?.stdout ?? ''), expected);
      // no hook: three phases
      const r2 = await migrate({ ...base(), pid: 78 });
      assert.deepEqual(
        r2.phases.map((p) => p.name),
        ['checkpoint+restore', 'resume-destination', 'release-source'],
      );
      assert.equal(r2.hook, null);
    });

    it('streams 200 MiB from the source into the destination without holding it (rss grows < 150 MB)', async function () {
      dst.keepQueues = false;
      dst.restoreDelayMs = 0;
      // warm up: channels, code paths, buffers
      src.checkpointBulk = [8 * MiB];
      await migrate({ ...base(), pid: 1 });

      const sizes = Array.from({ length: 8 }, () => 25 * MiB);
      src.checkpointBulk = sizes;
      const start = process.memoryUsage().rss;
      let peak = start;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 10);
      let r: MigrateReport;
      try {
        r = await migrate({ ...base(), pid: 2 });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      const growth = peak - start;
      assert.equal(r.queueBytes, 200 * MiB);
      assert.equal(r.connections, 8);
      assert.equal(dst.restored?.queueBytes, 200 * MiB);
      assert.equal(dst.restored?.connections.length, 8);
      assert.ok(growth < 150e6, `rss grew by ${(growth / MiB).toFixed(1)} MiB while 200 MiB went through`);
      console.log(`      200 MiB in ${r.phases[0].ms} ms; rss grew by ${(growth / MiB).toFixed(1)} MiB (from ${(start / MiB).toFixed(0)} MiB)`);
    });

    it('a failing hook aborts the destination and resumes the source', async function () {
      const events: string[] = [];
      const err = await rejectsWith(
        migrate({ ...base(), beforeResume: 'echo partial; echo boom >&2; exit 3', onPhase: (e) => events.push(`${e.name} ${e.status}`) }),
      );
      assert.equal(err.phase, 'hook');
      assert.equal(err.reason, 'hook exited with code 3: boom');
      assert.deepEqual(err.rolledBack, ['aborted destination session rst-1', 'resumed source session src-77']);
      assert.deepEqual(err.rollbackFailures, []);
      assert.equal(
        err.message,
        'migrate failed in hook: hook exited with code 3: boom (rolled back: aborted destination session rst-1, resumed source session src-77)',
      );
      assert.equal(err.report.hook?.stdout, 'partial\n');
      assert.equal(err.report.hook?.exitCode, 3);
      assert.deepEqual(events, ['checkpoint+restore started', 'checkpoint+restore completed', 'hook started', 'hook failed']);

      assert.deepEqual(dst.callNames(), ['Restore', 'Abort rst-1']);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      // the destination is aborted before the source resumes
      assert.ok(log.indexOf('dst Abort rst-1') < log.indexOf('src Resume src-77'));
      assert.equal(sessionState(dst, 'rst-1'), 5, 'destination ABORTED');
      assert.equal(sessionState(src, 'src-77'), 3, 'source RESUMED');
    });

    it('a hook that outlives its timeout is killed with its children, and rolled back', async function () {
      const pidFile = path.join(dir, 'sleeper.pid');
      const t0 = Date.now();
      const err = await rejectsWith(migrate({ ...base(), hookTimeoutMs: 300, beforeResume: `sleep 30 & echo $! > ${pidFile}; wait` }));
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.equal(err.phase, 'hook');
      assert.equal(err.reason, 'hook timed out after 300 ms');
      assert.equal(err.report.hook?.timedOut, true);
      assert.deepEqual(err.rolledBack, ['aborted destination session rst-1', 'resumed source session src-77']);
      const sleeper = Number(readFileSync(pidFile, 'utf8'));
      for (let i = 0; i < 50 && !gone(sleeper); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(gone(sleeper), "the hook's background child was killed");
    });

    it('a destination that fails Restore: the checkpoint is cancelled and the source resumed', async function () {
      src.checkpointBulk = [64 * MiB];
      dst.keepQueues = false;
      dst.restoreFailure = { code: grpc.status.FAILED_PRECONDITION, details: 'netns /run/netns/blue does not exist', kind: 'BAD_REQUEST', afterFrames: 3 };
      const err = await rejectsWith(migrate({ ...base(), beforeResume: 'echo never' }));
      assert.equal(err.phase, 'checkpoint+restore');
      assert.equal(err.reason, 'destination Restore: FAILED_PRECONDITION: netns /run/netns/blue does not exist');
      assert.deepEqual(err.rolledBack, ['resumed source session src-77']);
      assert.equal(
        err.message,
        'migrate failed in checkpoint+restore: destination Restore: FAILED_PRECONDITION: netns /run/netns/blue does not exist (rolled back: resumed source session src-77)',
      );
      assert.equal(err.report.hook, null);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      assert.deepEqual(dst.callNames(), ['Restore']);
      // the source stream was cut, not sent in full
      for (let i = 0; i < 50 && src.checkpointsCancelled === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(src.checkpointsCancelled, 1);
      assert.ok(src.checkpointFramesSent < 64, `${src.checkpointFramesSent} frames sent`);
    });

    it('a destination that fails while the source is stalled fails at once', async function () {
      src.checkpointStallAfter = 3;
      dst.restoreFailure = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many sessions', afterFrames: 2 };
      const t0 = Date.now();
      const err = await rejectsWith(migrate(base()));
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
      assert.equal(err.reason, 'destination Restore: RESOURCE_EXHAUSTED: too many sessions');
      assert.deepEqual(err.rolledBack, ['resumed source session src-77']);
      for (let i = 0; i < 50 && src.checkpointsCancelled === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(src.checkpointsCancelled, 1);
    });

    it('a source that fails mid-stream: the restore is cancelled and the source resumed', async function () {
      src.checkpointBulk = [16 * MiB];
      src.checkpointFailure = { code: grpc.status.ABORTED, details: 'connection 0 changed while frozen', kind: 'QUEUE_MISMATCH', afterFrames: 6 };
      const err = await rejectsWith(migrate(base()));
      assert.equal(err.phase, 'checkpoint+restore');
      assert.equal(err.reason, 'source Checkpoint: ABORTED: connection 0 changed while frozen');
      assert.deepEqual(err.rolledBack, ['resumed source session src-77']);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      assert.deepEqual(dst.callNames(), ['Restore']);
      for (let i = 0; i < 50 && dst.restoresCancelled === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(dst.restoresCancelled, 1);
      assert.equal(dst.sessions.size, 0);
    });

    it('a source that fails before its session header: nothing to roll back', async function () {
      src.checkpointFailure = { code: grpc.status.NOT_FOUND, details: 'no process with pid 77', kind: 'NO_SUCH_PROCESS', errno: 'ESRCH', afterFrames: 0 };
      const err = await rejectsWith(migrate(base()));
      assert.equal(
        err.message,
        'migrate failed in checkpoint+restore: source Checkpoint: NOT_FOUND: no process with pid 77 (errno ESRCH) (rolled back: nothing)',
      );
      // the cause is the daemon's refusal, typed
      assert.ok(err.cause instanceof SoccrError, String(err.cause));
      assert.deepEqual(
        [err.cause.kind, err.cause.errno, err.cause.grpcCode, err.cause.message],
        ['NO_SUCH_PROCESS', 'ESRCH', grpc.status.NOT_FOUND, 'no process with pid 77'],
      );
      assert.deepEqual(src.callNames(), ['Checkpoint']);
      assert.deepEqual(dst.callNames(), ['Restore']);
    });

    it('a destination Resume that fails: abort there, resume the source', async function () {
      dst.failUnary.Resume = { code: grpc.status.INTERNAL, details: 'delivery to /run/app.sock failed', kind: 'DELIVERY' };
      const err = await rejectsWith(migrate({ ...base(), deliverUnixPath: '/run/app.sock' }));
      assert.equal(err.phase, 'resume-destination');
      assert.equal(err.reason, 'destination Resume: INTERNAL: delivery to /run/app.sock failed');
      assert.deepEqual(err.rolledBack, ['aborted destination session rst-1', 'resumed source session src-77']);
      assert.deepEqual(dst.callNames(), ['Restore', 'Resume rst-1', 'Abort rst-1']);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      assert.ok(err.report.freezeMs > 0);
    });

    it('a rollback step that fails is reported, and the others still run', async function () {
      // (the daemon answered the Resume: its outcome is known, the destination is not live)
      dst.failUnary.Resume = { code: grpc.status.INTERNAL, details: 'delivery failed', kind: 'DELIVERY' };
      dst.failUnary.Abort = { code: grpc.status.UNAVAILABLE, details: 'daemon restarting' };
      const err = await rejectsWith(migrate(base()));
      assert.deepEqual(err.rolledBack, ['resumed source session src-77']);
      assert.deepEqual(err.rollbackFailures, ['destination session rst-1: UNAVAILABLE: daemon restarting']);
      assert.match(err.message, /\(rolled back: resumed source session src-77; rollback failed: destination session rst-1: UNAVAILABLE: daemon restarting\)$/);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
    });

    it('a destination Resume without an answer: waits out the hand-over the destination still runs, then acts on its outcome', async function () {
      // Live after all: the source is released, never resumed.
      dst.failUnary.Resume = { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', times: 1 };
      dst.failUnary.Abort = {
        code: grpc.status.FAILED_PRECONDITION,
        details: 'session rst-1 is busy: a hand-over of its sockets is in flight',
        kind: 'SESSION_BUSY',
      };
      const goLiveLater = (e: { name: string; status: string }): void => {
        if (e.name !== 'resume-destination' || e.status !== 'started') return;
        setTimeout(() => {
          const s = dst.sessions.get('rst-1');
          if (s) s.state = 3;
        }, 800);
      };
      const r = await migrate({ ...base(), onPhase: goLiveLater });
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Release src-77']);
      assert.equal(sessionState(dst, 'rst-1'), 3);
      assert.ok(dst.callNames().filter((c) => c === 'Abort rst-1').length >= 2, 'asked again while the hand-over ran');
      assert.match(r.warnings[0], /^Resume on the destination reported DEADLINE_EXCEEDED: Deadline exceeded, but session rst-1 is RESUMED: went on$/);

      // The hand-over failed in the end: aborted there once it let go, and the source resumed.
      src.reset();
      dst.reset();
      src.checkpointConns = [{ id: '3:1', fd: 3, state: withQueues(conn(), q.a, q.b) }];
      dst.failUnary.Resume = { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', times: 1 };
      dst.failUnary.Abort = { code: grpc.status.FAILED_PRECONDITION, details: 'session rst-1 is busy', kind: 'SESSION_BUSY', times: 2 };
      const err = await rejectsWith(migrate(base()));
      assert.equal(err.phase, 'resume-destination');
      assert.deepEqual(err.rolledBack, ['aborted destination session rst-1', 'resumed source session src-77']);
      assert.deepEqual(err.rollbackFailures, []);
      assert.deepEqual(dst.callNames(), ['Restore', 'Resume rst-1', 'Abort rst-1', 'Abort rst-1', 'Abort rst-1']);
    });

    it('a destination Resume without an answer, and no answer from the destination since: asked for as long as a hand-over can last, then rolled back', async function () {
      this.timeout(RESUME_DEADLINE_MS + 30_000);
      dst.failUnary.Resume = { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' };
      dst.failUnary.Abort = { code: grpc.status.UNAVAILABLE, details: 'connection refused' };
      dst.failUnary.GetSession = { code: grpc.status.UNAVAILABLE, details: 'connection refused' };
      let resumeSentAt = 0;
      const err = await rejectsWith(
        migrate({
          ...base(),
          onPhase: (e) => {
            if (e.name === 'resume-destination' && e.status === 'started') resumeSentAt = Date.now();
          },
        }),
      );
      const askedFor = Date.now() - resumeSentAt;
      assert.equal(err.phase, 'resume-destination');
      // the source resumed only once no hand-over could still make the destination live
      assert.ok(askedFor >= RESUME_DEADLINE_MS, `the destination was asked for ${askedFor} ms`);
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      assert.deepEqual(err.rolledBack, ['resumed source session src-77']);
      assert.deepEqual(err.rollbackFailures, [
        'destination session rst-1: UNAVAILABLE: connection refused',
        'destination session rst-1 did not answer for as long as its hand-over could last: taken as not live',
      ]);
    });

    it('a source Release that fails once the destination is live is retried, then only reported', async function () {
      src.failUnary.Release = { code: grpc.status.UNAVAILABLE, details: 'connection reset', times: 1 };
      const r = await migrate(base());
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Release src-77', 'Release src-77']);
      assert.equal(sessionState(src, 'src-77'), 4);
      assert.equal(r.warnings.length, 1);
      assert.match(r.warnings[0], /^Release of source session src-77 took 2 attempts \(first failure: UNAVAILABLE: connection reset\)$/);

      src.reset();
      dst.reset();
      src.checkpointConns = [{ id: '3:1', fd: 3, state: withQueues(conn(), q.a, q.b) }];
      src.failUnary.Release = { code: grpc.status.UNAVAILABLE, details: 'connection reset' };
      const events: string[] = [];
      const r2 = await migrate({ ...base(), onPhase: (e) => events.push(`${e.name} ${e.status}`) });
      // bounded: three tries, no rollback (the destination is live)
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Release src-77', 'Release src-77', 'Release src-77']);
      assert.deepEqual(dst.callNames(), ['Restore', 'Resume rst-1']);
      assert.equal(sessionState(dst, 'rst-1'), 3);
      assert.equal(r2.warnings.length, 1);
      assert.match(
        r2.warnings[0],
        /^Release of source session src-77 on unix:\/\/.* failed: UNAVAILABLE: connection reset\. The destination is live, so nothing was rolled back/,
      );
      assert.deepEqual(
        r2.phases.map((p) => [p.name, p.ok]),
        [
          ['checkpoint+restore', true],
          ['resume-destination', true],
          ['release-source', false],
        ],
      );
      assert.equal(events[events.length - 1], 'release-source failed');
    });

    it('renews both leases while the hook runs, and rolls back if the source session is lost meanwhile', async function () {
      const r = await migrate({ ...base(), leaseMs: 400, beforeResume: 'sleep 0.6' });
      const renewals = (d: StandInDaemon, id: string): number => d.calls.filter((c) => c.method === 'RenewLease' && c.sessionId === id).length;
      assert.ok(renewals(src, 'src-77') >= 3, `${renewals(src, 'src-77')} source renewals`);
      assert.ok(renewals(dst, 'rst-1') >= 3, `${renewals(dst, 'rst-1')} destination renewals`);
      assert.deepEqual(r.warnings, []);

      src.reset();
      dst.reset();
      src.checkpointConns = [{ id: '3:1', fd: 3, state: withQueues(conn(), q.a, q.b) }];
      src.failUnary.RenewLease = { code: grpc.status.NOT_FOUND, details: 'no session src-77', kind: 'NO_SUCH_SESSION' };
      const err = await rejectsWith(migrate({ ...base(), leaseMs: 400, beforeResume: 'sleep 0.4' }));
      assert.equal(err.phase, 'resume-destination');
      assert.match(err.reason, /^SESSION_STATE: source session src-77 is gone \(NOT_FOUND: no session src-77\)$/);
      // the destination never went live
      assert.deepEqual(dst.callNames(), ['Restore', 'Abort rst-1']);
    });

    it('refuses bad options before calling anyone', async function () {
      await assert.rejects(migrate({ ...base(), pid: -1 }), RangeError);
      await assert.rejects(migrate({ ...base(), to: '' }), RangeError);
      await assert.rejects(migrate({ ...base(), hookTimeoutMs: 0 }), RangeError);
      assert.deepEqual(log, []);
    });
  });

  describe('soccrctl migrate', function () {
    it('prints each phase as it completes and the freeze time', async function () {
      const r = await run([
        'migrate',
        '--from',
        src.address,
        '--to',
        dst.address,
        '--pid',
        '77',
        '--fd',
        '3,5',
        '--netns',
        'blue',
        '--deliver',
        'unix:/run/app.sock',
        '--before-resume',
        'echo hello from the hook',
        '--lease-ms',
        '15000',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(
        lines[0],
        /^checkpoint\+restore\s+\d+\.\d+ m?s\s+2 connection\(s\), 5\.0 MiB of queues; source session src-77, destination session rst-1 held$/,
      );
      assert.match(lines[1], /^hook\s+\d+\.\d+ m?s\s+exit 0$/);
      assert.equal(lines[2], '  stdout | hello from the hook');
      assert.match(lines[3], /^resume-destination\s+\d+\.\d+ m?s\s+destination live$/);
      assert.match(lines[4], /^release-source\s+\d+\.\d+ m?s\s+source released$/);
      assert.match(
        lines[5],
        /^migrated 2 connection\(s\) of pid 77 \(5\.0 MiB of queues\) from unix:\/\/.* to unix:\/\/.*: frozen for \d+\.\d+ m?s, \d+\.\d+ m?s in all$/,
      );
      assert.equal(lines.length, 6);
      assert.deepEqual(checkpointCall(src).request, {
        pid: 77,
        fds: [3, 5],
        all: false,
        options: { leaseMs: 15000, noNetworkLock: false, stopOwner: true, allowPartial: false, takeBacklog: false },
        dataTransfer: null,
      });
      assert.deepEqual(dst.restored?.options, {
        netns: '/run/netns/blue',
        deliverUnixPath: '/run/app.sock',
        goLive: false,
        transparent: true,
        leaseMs: 15000,
        noNetworkLock: false,
        dataTransfer: null,
      });
    });

    it('--json prints the report, the phases on stderr', async function () {
      const r = await run(['--json', 'migrate', '--from', src.address, '--to', dst.address, '--pid', '77', '--no-stop-owner', '--no-network-lock']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as MigrateReport;
      assert.equal(report.sourceSessionId, 'src-77');
      assert.equal(report.destinationSessionId, 'rst-1');
      assert.equal(report.connections, 2);
      assert.ok(report.freezeMs > 0);
      assert.deepEqual(
        report.phases.map((p) => p.name),
        ['checkpoint+restore', 'resume-destination', 'release-source'],
      );
      assert.deepEqual(
        r.stderr
          .trimEnd()
          .split('\n')
          .map((l) => l.split(/\s+/)[0]),
        ['checkpoint+restore', 'resume-destination', 'release-source'],
      );
      assert.deepEqual(checkpointCall(src).request, {
        pid: 77,
        fds: [],
        all: true,
        options: { leaseMs: 0, noNetworkLock: true, stopOwner: false, allowPartial: false, takeBacklog: true },
        dataTransfer: null,
      });
      assert.equal(dst.restored?.options.noNetworkLock, true);
    });

    it('exits with one line saying which phase failed, why and what was rolled back: 1 for a hook, 64 + the status for a daemon', async function () {
      const r = await run([
        'migrate',
        '--from',
        src.address,
        '--to',
        dst.address,
        '--pid',
        '77',
        '--before-resume',
        'echo some output; echo "cannot move 10.1.2.3" >&2; exit 4',
      ]);
      assert.equal(r.code, 1, 'a failed hook has no gRPC status');
      assert.equal(
        r.stderr,
        'soccrctl: migrate failed in hook: hook exited with code 4: cannot move 10.1.2.3 (rolled back: aborted destination session rst-1, resumed source session src-77)\n',
      );
      assert.match(r.stdout, /^checkpoint\+restore\s/);
      assert.match(
        r.stdout,
        /\nhook\s+\d+\.\d+ m?s\s+FAILED: hook exited with code 4: cannot move 10\.1\.2\.3\n {2}stdout \| some output\n {2}stderr \| cannot move 10\.1\.2\.3\n$/,
      );
      assert.deepEqual(src.callNames(), ['Checkpoint', 'Resume src-77']);
      assert.deepEqual(dst.callNames(), ['Restore', 'Abort rst-1']);

      src.reset();
      dst.reset();
      src.checkpointConns = [{ id: '3:1', fd: 3, state: withQueues(conn(), q.a, q.b) }];
      dst.restoreFailure = { code: grpc.status.PERMISSION_DENIED, details: 'setns failed', errno: 'EPERM', afterFrames: 1 };
      const j = await run(['--json', 'migrate', '--from', src.address, '--to', dst.address, '--pid', '77']);
      assert.equal(j.code, 71, 'PERMISSION_DENIED: 64 + 7');
      const errLines = j.stderr.trimEnd().split('\n');
      assert.equal(
        errLines[errLines.length - 1],
        'soccrctl: migrate failed in checkpoint+restore: destination Restore: PERMISSION_DENIED: setns failed (errno EPERM) (rolled back: resumed source session src-77)',
      );
      const doc = JSON.parse(j.stdout) as { error: ErrorReport & { phase: string; rolledBack: string[] }; report: MigrateReport };
      assert.deepEqual(Object.keys(doc), ['report', 'error']);
      assert.deepEqual([doc.error.exitCode, doc.error.status, doc.error.errno], [71, 'PERMISSION_DENIED', 'EPERM']);
      assert.equal(doc.error.message, errLines[errLines.length - 1].replace(/^soccrctl: /, ''));
      assert.equal(doc.error.phase, 'checkpoint+restore');
      assert.deepEqual(doc.error.rolledBack, ['resumed source session src-77']);
      assert.equal(doc.report.sourceSessionId, 'src-77');
    });

    it('rejects bad arguments before calling a daemon', async function () {
      for (const args of [
        ['migrate', '--to', dst.address, '--pid', '1'],
        ['migrate', '--from', src.address, '--to', dst.address],
        ['migrate', '--from', src.address, '--to', dst.address, '--pid', 'x'],
        ['migrate', '--from', src.address, '--to', dst.address, '--pid', '1', '--deliver', 'tcp:1.2.3.4'],
        ['migrate', '--from', src.address, '--to', dst.address, '--pid', '1', '--hook-timeout-ms', '0'],
      ]) {
        const r = await run(args);
        assert.equal(r.code, 2, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^soccrctl: /);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      }
      assert.deepEqual(log, []);
      const help = await run(['migrate', '--help']);
      for (const o of [
        '--from',
        '--to',
        '--pid',
        '--fd',
        '--netns',
        '--deliver',
        '--before-resume',
        '--no-stop-owner',
        '--no-network-lock',
        '--lease-ms',
        '--hook-timeout-ms',
      ]) {
        assert.ok(help.stdout.includes(o), `migrate --help lacks ${o}`);
      }
    });
  });
});
