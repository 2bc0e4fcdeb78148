// Concurrent Checkpoint and Restore calls on one running soccrd (issue 5): four owner processes hold 25
// live connections each. Round 1: all 100 connections are checkpointed at once (one call each, owners
// left running: stop_owner false), and each checkpoint file is restored the moment it is complete into a
// second host namespace (held, never live). Round 2: 100 Checkpoint and 100 Restore calls (of round 1's
// files), all 200 in flight at once. After each round every restore is aborted and every source resumed,
// again all at once. Every call completes; the daemon ends with the fds it had and at most MEMORY_BOUND more
// resident memory than after a warm-up round, holding no session, lock entry or socket; every connection
// carries traffic at its source afterwards, every byte exactly once.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionInfoMsg, SessionState, SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { MultiFixture, killAllMulti, untilExchanged } from '../lab/multi';
import { SERVICE_V4, Topology, leftoverNamespaces, lockEntries, tcpSockets } from '../lab/netns';
import { KiB, MiB, sleep } from '../lab/scenario';

const OWNERS = 4;
const PER_OWNER = 25;
const CONNECTIONS = OWNERS * PER_OWNER;
/**
 * How much more resident memory the daemon may hold after rounds 1 and 2 than after the warm-up (both
 * rounds once), when everything is over. Each round carries about 100 x 32 KiB of queue bytes, and nothing
 * of a session stays after it ends but its summary; measured here: a few MiB, level over ten rounds. The
 * bound leaves room for the heap's own ups and downs (tens of MiB with 200 calls in flight).
 */
const MEMORY_BOUND = 64 * MiB;

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function settle(read: () => number, want: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (v === want || Date.now() > deadline) return v;
    await sleep(100);
  }
}

const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

describe('200 concurrent Checkpoint and Restore calls on a running soccrd', function () {
  this.timeout(180_000);
  let daemon: DaemonProcess;
  let client: SoccrClient;
  let topo: Topology;
  let dir: string;

  /** The daemon's fds with no connection of this test open (gRPC channels share and reopen connections as they like). */
  async function quietFds(want = -1): Promise<number> {
    client.close();
    const n = await settle(() => openFds(daemon.pid), want, want < 0 ? 1000 : 10_000);
    client = new SoccrClient(daemon.address, { timeoutMs: 30_000 });
    return n;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'soccrt-conc'));
    topo = Topology.create(2);
    // One caller (this process) has up to 200 calls running and holds 200 sessions at once: above the
    // daemon's default per-caller call limit (64).
    daemon = await DaemonProcess.start([
      '--lease-ms',
      '60000',
      '--log-level',
      'warn',
      '--lock-grace-ms',
      '0',
      '--max-calls-per-caller',
      '512',
      '--max-sessions-per-caller',
      '512',
    ]);
    client = new SoccrClient(daemon.address, { timeoutMs: 30_000 });
  });

  after(async () => {
    client?.close();
    await killAllMulti();
    await cleanupDaemons();
    topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs(60)}\n`);
  });

  it(`${CONNECTIONS} checkpoints (owners running) and ${CONNECTIONS} restores at once, twice, then abort and resume everything: no fd or memory leak, traffic goes on`, async () => {
    const [host, other] = topo.hosts;
    // Four owners with 25 connections each, streaming both ways with their clients in the peer namespace.
    const servers: MultiFixture[] = [];
    const clients: MultiFixture[] = [];
    for (let k = 0; k < OWNERS; k++) {
      const port = 5101 + k;
      servers.push(await MultiFixture.start(host, { mode: 'serve', ip: SERVICE_V4, port, count: PER_OWNER, clientPortBase: 41000 + 100 * k }));
      clients.push(
        await MultiFixture.start(topo.peer, {
          mode: 'clients',
          ip: SERVICE_V4,
          port,
          count: PER_OWNER,
          clientPortBase: 41000 + 100 * k,
          bytesPerTick: 4 * KiB,
        }),
      );
    }
    await Promise.all([...servers, ...clients].map((f) => f.waitConnected(15_000)));
    await Promise.all([...servers, ...clients].map((f) => f.stream(true)));
    await sleep(300);
    await Promise.all([...servers, ...clients].map((f) => f.stream(false)));
    for (let k = 0; k < OWNERS; k++) await untilExchanged(servers[k], clients[k], 20_000);

    // The owners stop their I/O (their sockets will be frozen under them); their peers send 32 KiB more on
    // every connection, which waits unread in the owners' receive queues and travels in the checkpoints.
    const quiesced = await Promise.all(servers.map((s) => s.quiesce()));
    await Promise.all(clients.map((c) => c.write(32 * KiB)));
    await sleep(300);
    const targets = (await Promise.all(servers.map(async (s) => (await s.status()).connections.map((c) => ({ pid: s.pid, fd: c.fd }))))).flat();
    assert.equal(targets.length, CONNECTIONS);

    let inFlight = 0;
    let maxInFlight = 0;
    const track = async <T>(p: Promise<T>): Promise<T> => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await p;
      } finally {
        inFlight--;
      }
    };
    const checkpoint = (i: number, round: number): Promise<{ source: string; bytes: number; file: string }> =>
      track(client.checkpointToFile(targets[i].pid, { fds: [targets[i].fd], leaseMs: 120_000, stopOwner: false }, join(dir, `r${round}-${i}.soccr`))).then(
        (ck) => ({
          source: ck.header.sessionId,
          bytes: ck.queueBytes,
          file: ck.file,
        }),
      );
    const restore = (file: string): Promise<SessionInfoMsg> =>
      track(client.restoreFromFile(file, { netns: topo.nsPath(other), goLive: false, leaseMs: 120_000 }));
    const settled = <T>(rs: Array<PromiseSettledResult<T>>, what: string): T[] => {
      const failed = rs.flatMap((r, i) => (r.status === 'rejected' ? [`${what} ${i}: ${String(r.reason)}`] : []));
      assert.deepEqual(failed, [], `every ${what} completes`);
      return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
    };
    /** Every restore held, every source frozen; then all of them ended at once (restores aborted, sources resumed). */
    const endAll = async (sources: string[], restores: SessionInfoMsg[]): Promise<void> => {
      assert.ok(
        restores.every((r) => r.state === SessionState.HELD && r.connections.length === 1),
        'every restore is held with its connection',
      );
      const sessions = await client.listSessions();
      assert.equal(sessions.filter((x) => x.state === SessionState.FROZEN).length, sources.length, 'every source frozen');
      assert.equal(sessions.filter((x) => x.state === SessionState.HELD).length, restores.length, 'every restore held');
      assert.ok(tcpSockets(other).length >= restores.length, 'the rebuilt sockets exist in the other host');
      settled(
        await Promise.allSettled([...restores.map((r) => track(client.abort(r.sessionId))), ...sources.map((id) => track(client.resume(id)))]),
        'abort or resume',
      );
    };
    const ids = Array.from({ length: CONNECTIONS }, (_, i) => i);

    /** Round 1's shape: the 100 Checkpoint calls start together; each file is restored the moment it is complete. */
    const pipelined = async (round: number): Promise<Array<{ source: string; bytes: number; file: string; restored: SessionInfoMsg }>> =>
      settled(
        await Promise.allSettled(
          ids.map(async (i) => {
            const ck = await checkpoint(i, round);
            return { ...ck, restored: await restore(ck.file) };
          }),
        ),
        'checkpoint then restore',
      );

    /** 100 Checkpoint calls and 100 Restore calls (of `files`) all started at once; returns how long the calls took. */
    const allAtOnce = async (round: number, files: string[]): Promise<number> => {
      const t = Date.now();
      const [checkpoints, restores] = await Promise.all([
        Promise.allSettled(ids.map((i) => checkpoint(i, round))),
        Promise.allSettled(files.map((f) => restore(f))),
      ]);
      const ms = Date.now() - t;
      await endAll(
        settled(checkpoints, 'checkpoint').map((d) => d.source),
        settled(restores, 'restore'),
      );
      return ms;
    };

    // Warm-up: both rounds once as they will be measured, so that the baseline holds what the daemon
    // keeps for good: its home namespace descriptor, loaded code, and the JS heap grown to its working
    // size (the first bursts grow V8's young generation to its maximum, about 25 MiB of RSS here, which it
    // keeps; from then on RSS stays level however many rounds follow). Then the baseline, with no client.
    const rssCold = rss(daemon.pid);
    const warm = await pipelined(0);
    await endAll(
      warm.map((d) => d.source),
      warm.map((d) => d.restored),
    );
    await allAtOnce(
      10,
      warm.map((d) => d.file),
    );
    await sleep(500);
    const fdsBefore = await quietFds();
    const rssBefore = rss(daemon.pid);
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss(daemon.pid));
    }, 25);

    // Round 1: the 100 Checkpoint calls start together; each file is restored the moment it is complete.
    maxInFlight = 0;
    const t0 = Date.now();
    const round1 = await pipelined(1);
    const round1Ms = Date.now() - t0;
    const round1InFlight = maxInFlight;
    assert.ok(
      round1.every((d) => d.bytes >= 32 * KiB),
      'every checkpoint carried the unread bytes',
    );
    await endAll(
      round1.map((d) => d.source),
      round1.map((d) => d.restored),
    );

    // Round 2: 100 Checkpoint calls and 100 Restore calls (of round 1's files), all 200 in flight at once.
    maxInFlight = 0;
    const round2Ms = await allAtOnce(
      2,
      round1.map((d) => d.file),
    );
    const round2InFlight = maxInFlight;
    clearInterval(sampler);
    process.stdout.write(
      `      round 1: ${2 * CONNECTIONS} calls (each restore after its checkpoint) in ${(round1Ms / 1000).toFixed(1)} s, up to ${round1InFlight} in flight; ` +
        `round 2: ${2 * CONNECTIONS} calls in ${(round2Ms / 1000).toFixed(1)} s, up to ${round2InFlight} in flight; each round then ${2 * CONNECTIONS} aborts and resumes at once\n` +
        `      queue bytes per round ${mib(round1.reduce((a, d) => a + d.bytes, 0))}; daemon RSS ${mib(rssCold)} cold, ${mib(rssBefore)} after the warm-up round, peak ${mib(peak)}\n`,
    );
    assert.equal(round2InFlight, 2 * CONNECTIONS, 'round 2 had all its calls in flight at once');

    // Nothing left behind.
    const active = (await client.listSessions()).filter((s) => s.state === SessionState.FROZEN || s.state === SessionState.HELD);
    assert.deepEqual(
      active.map((s) => s.sessionId),
      [],
      'no session frozen or held',
    );
    for (const [name, ns] of [
      ['the owners namespace', host],
      ['the restore namespace', other],
      ['the root namespace', undefined],
    ] as Array<[string, string | undefined]>) {
      assert.equal(lockEntries(ns, daemon.lockTable), 0, `lock entries left in ${name}`);
    }
    assert.deepEqual(tcpSockets(other), [], 'no socket left in the restore namespace');

    // Every connection carries traffic at its source: the queued bytes first, then more both ways.
    await Promise.all(servers.map((s) => s.resume()));
    await Promise.all([...servers, ...clients].map((f) => f.stream(true)));
    await sleep(500);
    await Promise.all([...servers, ...clients].map((f) => f.stream(false)));
    for (let k = 0; k < OWNERS; k++) {
      // Both ends agree on every byte (untilExchanged), and each connection moved on from where it was
      // frozen: the 32 KiB queued in the checkpoint and what streamed after it, both ways.
      const [s, c] = await untilExchanged(servers[k], clients[k], 30_000);
      assert.ok(
        s.connections.every((x) => x.error === null && !x.eof && x.mismatchAt < 0),
        `owner ${k}: a connection broke`,
      );
      assert.ok(
        c.connections.every((x) => x.error === null && !x.eof && x.mismatchAt < 0),
        `peer ${k}: a connection broke`,
      );
      const at = new Map(quiesced[k].status.connections.map((x) => [x.key, x]));
      for (const x of s.connections) {
        const was = at.get(x.key);
        assert.ok(
          was && x.received >= was.received + 32 * KiB && x.sent > was.sent,
          `owner ${k} ${x.key}: no traffic after the resume (${JSON.stringify(was && { received: was.received, sent: was.sent })} -> ${x.received}/${x.sent})`,
        );
      }
    }

    // The daemon's own resources: the same fds, bounded memory.
    const fdsAfter = await quietFds(fdsBefore);
    assert.equal(fdsAfter, fdsBefore, `soccrd holds ${fdsAfter} fds, ${fdsBefore} before`);
    await sleep(1000);
    const rssAfter = rss(daemon.pid);
    process.stdout.write(
      `      daemon fds ${fdsBefore} before, ${fdsAfter} after; RSS ${mib(rssBefore)} before, ${mib(rssAfter)} after (bound +${mib(MEMORY_BOUND)})\n`,
    );
    assert.ok(rssAfter - rssBefore < MEMORY_BOUND, `RSS grew by ${mib(rssAfter - rssBefore)}, bound ${mib(MEMORY_BOUND)}`);
    assert.ok((await client.getVersion()).version, 'GetVersion answers');
  });
});
