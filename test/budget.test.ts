// The daemon-wide budget (daemon/custody/budget.ts) against a real soccrd (issue 12).
//
// 1. Kernel memory of held sockets: three Restore streams at once, each one connection whose receive
//    queue is near the per-queue limit (224 MiB of 256 MiB), into a namespace under the network lock,
//    with --max-held-socket-bytes fitting two. Exactly one fails with RESOURCE_EXHAUSTED (kind LIMIT) and
//    leaves nothing (its session ABORTED, its lock entry and socket gone); the other two are HELD, then
//    resumed to a receiver that reads every queue byte back (SHA-256 equal). Afterwards the daemon holds
//    no session, lock entry or socket, has the fds it had, and its budget is back to zero. The same three
//    streams on a daemon with the default budget (which fits all three here) all succeed: the test
//    prints both daemons' peak RSS (VmHWM).
// 2. Buffered queue bytes: a stream that has announced a connection and is still sending its queue holds
//    its budget; a second stream whose connection would pass --max-buffered-bytes fails with
//    RESOURCE_EXHAUSTED at once, and the first completes exactly.
// 3. A Restore over a direct data connection charges that connection's read-ahead first: past the
//    budget it fails at once, reading nothing.
// 4. A Checkpoint whose queues would pass --max-buffered-bytes fails with RESOURCE_EXHAUSTED before it
//    reads them; the source is thawed and the connection goes on, every byte exactly once.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { FrameMsg, SessionInfoMsg, SessionState, SoccrClient, isServiceError, sessionStateName } from '../client/client';
import { SocketReceiver } from '../receiver/receiver';
import { defaultBudgetLimits } from '../daemon/custody/budget';
import { soccrErrorOf } from '../protocol/error-status';
import { MAX_CHUNK } from '../protocol/frames';
import { QueueKind, SessionHeaderMsg } from '../protocol/messages';
import { addressToMsg } from '../protocol/address';
import { OPTIONS_NOT_CARRIED, STATE_VERSION, SavedConnection, TcpState } from '../protocol/saved-state';
import { stateToObject } from '../protocol/state-codec';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { PEER_V4, SERVICE_V4, Topology, leftoverNamespaces, lockEntries, tcpSockets } from '../lab/netns';
import { KiB, MiB, connectPair, destroyTopologies, sleep, socketPath } from '../lab/scenario';
import { listTcpSockets } from '../daemon/repair/acquire';

/** One stream's receive queue: near the per-queue limit (256 MiB), so that three of them are a lot of memory. */
const BIG = 224 * MiB;

/** A connection the target namespace can take (10.77.0.1 is there), with `recv` as its unread bytes. */
function synthConn(localPort: number, recvLen: number): SavedConnection {
  const inqSeq = 1_000_000 + localPort;
  return {
    version: STATE_VERSION,
    state: TcpState.ESTABLISHED,
    socketFamily: 'ipv4',
    local: { family: 'ipv4', ip: SERVICE_V4, port: localPort },
    remote: { family: 'ipv4', ip: PEER_V4, port: 40_000 + (localPort % 1000) },
    inqSeq,
    outqSeq: 7_000_000,
    inqLen: recvLen,
    outqLen: 0,
    unsentLen: 0,
    mssClamp: 1400,
    tcpOptions: 7,
    sndWscale: 7,
    rcvWscale: 7,
    timestamp: 12345,
    window: { sndWl1: inqSeq, sndWnd: 65535, maxWindow: 65535, rcvWnd: 65535, rcvWup: inqSeq },
    recvQueue: Buffer.alloc(0),
    sendQueue: Buffer.alloc(0),
    options: {
      reuseAddr: false,
      noDelay: true,
      cork: false,
      keepAlive: false,
      keepIdle: 7200,
      keepIntvl: 75,
      keepCnt: 9,
      userTimeout: 0,
      congestion: '',
      sndBuf: 87040,
      rcvBuf: 131072,
      tos: 0,
      mark: 0,
      bufLock: 0,
      ...OPTIONS_NOT_CARRIED,
    },
  };
}

function header(id: string, st: SavedConnection): FrameMsg {
  const h: SessionHeaderMsg = {
    sessionId: id,
    leaseExpiresUnixMs: 0,
    connectionCount: 1,
    pid: 4242,
    hostname: 'budget',
    createdUnixMs: Date.now(),
    tuples: [
      {
        local: addressToMsg(st.local),
        remote: addressToMsg(st.remote),
      },
    ],
    skipped: [],
  };
  return { session: h };
}

/** The frames of a one-connection session whose receive queue is `recv`, in chunks of 1 MiB. */
function* streamOf(id: string, localPort: number, recv: Buffer, digest: Buffer): Generator<FrameMsg> {
  const st = synthConn(localPort, recv.length);
  yield header(id, st);
  yield { connection: { index: 0, id: `${id}:0`, fd: 3, state: stateToObject(st) } };
  for (let off = 0; off < recv.length; off += MAX_CHUNK)
    yield { chunk: { index: 0, queue: QueueKind.RECV, offset: off, data: recv.subarray(off, Math.min(off + MAX_CHUNK, recv.length)) } };
  yield { end: { index: 0, recvSha256: digest, sendSha256: createHash('sha256').digest() } };
  yield { streamEnd: { connectionCount: 1 } };
}

// ---- the daemon as seen from outside --------------------------------------------------------------------

/**
 * The daemon's open fds but its callers' connections (accepted on its gRPC socket): grpc-js keeps a
 * closed client's connection open for a while at its own discretion, which is no fd the daemon holds.
 */
function openFds(d: DaemonProcess): number {
  const callers = new Set(
    execFileSync('ss', ['-xanH'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(` ${d.socketPath} `))
      .map((l) => `socket:[${l.trim().split(/\s+/)[5]}]`),
  );
  return fdList(d.pid).filter((e) => !callers.has(e.slice(e.indexOf('->') + 2))).length;
}

function fdList(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return `${fd}->${readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
    } catch {
      return `${fd}->?`;
    }
  });
}

/** The daemon's peak resident memory (VmHWM), bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function metricsAddress(d: DaemonProcess): string {
  const info = JSON.parse(readFileSync(join(d.stateDir, 'daemon.json'), 'utf8')) as { metrics?: string };
  assert.ok(info.metrics, 'the daemon serves metrics');
  return info.metrics;
}

/** The budget gauges: pool -> bytes used. */
function budgetUsed(address: string): Promise<{ buffered: number; kernel: number }> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${address}/metrics`, { timeout: 5000, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const used = (pool: string): number => Number(new RegExp(`^soccrd_budget_used_bytes\\{pool="${pool}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
        resolve({ buffered: used('buffered'), kernel: used('kernel') });
      });
    });
    req.on('timeout', () => req.destroy(new Error('metrics: no answer within 5 s')));
    req.on('error', reject);
  });
}

async function until<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * A client of `d`. Always the same options: grpc-js keeps a connection per address and options after its
 * clients close, so that the daemon's fd count is comparable only between clients made alike.
 */
const clientOf = (d: DaemonProcess): SoccrClient => new SoccrClient(d.address, { timeoutMs: 120_000 });

const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;

/** Reads `n` bytes from a live socket; resolves with their SHA-256. */
function readAll(sock: Socket, n: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let got = 0;
    const t = setTimeout(() => reject(new Error(`read ${got} of ${n} bytes in ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (b: Buffer) => {
      h.update(b);
      got += b.length;
      if (got >= n) {
        clearTimeout(t);
        resolve(got === n ? h.digest('hex') : `${got} bytes, more than ${n}`);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

describe('the daemon-wide budget', function () {
  this.timeout(240_000);
  let topo: Topology;
  let ns: string;
  let big: Buffer;
  let bigDigest: Buffer;
  let baselineList: string[] = [];

  before(() => {
    topo = Topology.create(1);
    ns = topo.hosts[0];
    // Live sockets must find no peer that answers (their peer state is made up): packets to it vanish.
    topo.blackhole(0);
    big = randomBytes(BIG);
    bigDigest = createHash('sha256').update(big).digest();
  });

  after(async () => {
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
    topo?.destroy();
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs(40)}\n`);
  });

  /** A daemon, warmed up (it opens what it keeps for good), and its fds with no client connected. */
  async function daemonWith(args: string[]): Promise<{ d: DaemonProcess; metrics: string; fds: number }> {
    const d = await DaemonProcess.start(['--lease-ms', '120000', '--log-level', 'warn', '--lock-grace-ms', '0', '--metrics-listen', '127.0.0.1:0', ...args]);
    const c = clientOf(d);
    const small = randomBytes(1000);
    const s = await c.restore({ netns: topo.nsPath(ns) }, streamOf('warm', 6000, small, createHash('sha256').update(small).digest()));
    await c.abort(s.sessionId);
    c.close();
    // The first scrape opens what the metrics endpoint keeps.
    await budgetUsed(metricsAddress(d));
    await sleep(300);
    baselineList = fdList(d.pid);
    return { d, metrics: metricsAddress(d), fds: openFds(d) };
  }

  /**
   * No session frozen or held, no lock entry, no socket in the namespace, the budget at zero, and (once
   * `clients` are closed) the fds the daemon had.
   */
  async function assertNothingHeld(d: DaemonProcess, metrics: string, fds: number, clients: SoccrClient[]): Promise<void> {
    const c = clientOf(d);
    try {
      const active = (await c.listSessions()).filter((s) => s.state === SessionState.FROZEN || s.state === SessionState.HELD);
      assert.deepEqual(
        active.map((s) => `${s.sessionId} ${sessionStateName(s.state)}`),
        [],
        'no session frozen or held',
      );
    } finally {
      c.close();
    }
    assert.equal(lockEntries(ns, d.lockTable), 0, 'no lock entry left');
    await until(
      'sockets in the namespace',
      () => tcpSockets(ns),
      (l) => l.length === 0,
      10_000,
    );
    assert.deepEqual(await budgetUsed(metrics), { buffered: 0, kernel: 0 }, 'the budget is back to zero');
    for (const x of clients) x.close();
    const n = await until(
      "the daemon's open fds",
      () => openFds(d),
      (k) => k === fds,
      30_000,
    ).catch(() => -1);
    if (n !== fds) {
      const fresh = fdList(d.pid).filter((e) => !baselineList.includes(e));
      const ss = execFileSync('ss', ['-aenpxtuw'], { encoding: 'utf8' }).split('\n');
      const where = fresh.map(
        (e) => `${e} ${ss.filter((l) => / ino:| /.test(l) && new RegExp(`(ino:| )${/\[(\d+)\]/.exec(e)?.[1] ?? 'x'}( |$)`).test(l)).join(' | ')}`,
      );
      assert.fail(
        `the daemon's fds: ${fds} before, now ${openFds(d)}; new: ${where.join('; ')}; gone: ${baselineList.filter((e) => !fdList(d.pid).includes(e)).join(' ')}`,
      );
    }
  }

  /** Three full-size restores at once, held; returns each one's outcome. */
  async function threeAtOnce(c: SoccrClient): Promise<Array<PromiseSettledResult<SessionInfoMsg>>> {
    return Promise.allSettled([0, 1, 2].map((k) => c.restore({ netns: topo.nsPath(ns), leaseMs: 120_000 }, streamOf(`big${k}`, 6100 + k, big, bigDigest))));
  }

  it(`held sockets: three restores of ${mib(BIG)} at once with a budget for two: one RESOURCE_EXHAUSTED, two resume byte-exact, nothing leaked; peak RSS with and without the budget`, async () => {
    // --- with a budget that fits two ---
    const { d, metrics, fds } = await daemonWith(['--max-held-socket-bytes', String(Math.floor(2.5 * BIG))]);
    const before = peakRss(d.pid);
    const c = clientOf(d);
    const receiver = await SocketReceiver.listen(socketPath('budget'));
    const received: Socket[] = [];
    receiver.on('socket', (s) => received.push(s));
    receiver.on('error', () => undefined);
    try {
      const outcomes = await threeAtOnce(c);
      const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
      const held = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      assert.equal(refused.length, 1, `exactly one refused: ${outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'OK')).join('; ')}`);
      const err = refused[0];
      assert.ok(isServiceError(err), String(err));
      assert.equal(grpc.status[err.code], 'RESOURCE_EXHAUSTED', err.details);
      assert.equal(soccrErrorOf(err)?.kind, 'LIMIT');
      assert.match(err.details, /budget of kernel memory held by rebuilt sockets.*--max-held-socket-bytes/);
      assert.deepEqual(
        held.map((s) => sessionStateName(s.state)),
        ['HELD', 'HELD'],
      );
      const peakWithBudget = peakRss(d.pid);
      // The refused stream's session ended without a socket; the budget holds exactly the two held ones.
      const all = await c.listSessions();
      assert.equal(all.filter((s) => s.state === SessionState.HELD).length, 2, 'two sessions held');
      assert.equal(all.filter((s) => s.state === SessionState.ABORTED && s.connections.length === 0).length, 1, 'the refused session ended with no socket');
      assert.deepEqual(await budgetUsed(metrics), { buffered: 0, kernel: 2 * BIG }, 'the budget holds the two held sessions');
      // What the host's TCP memory accounting says meanwhile (pages, host-wide: other sockets count too).
      const tcpMem = Number(/^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? 0) * 4096;
      assert.equal(tcpSockets(ns).length, 2, `two rebuilt sockets in the namespace: ${tcpSockets(ns).join('; ')}`);
      assert.equal(lockEntries(ns, d.lockTable), 2, "the refused stream's lock entry is gone");

      // The two held sessions go live at the receiver; every byte of each queue is read back.
      for (const s of held) {
        const r = await c.resume(s.sessionId, receiver.path);
        assert.equal(sessionStateName(r.state), 'RESUMED');
      }
      await until(
        'delivered sockets',
        () => received.length,
        (n) => n === 2,
        20_000,
      );
      const digests = await Promise.all(received.map((s) => readAll(s, BIG, 60_000)));
      assert.deepEqual(digests, [bigDigest.toString('hex'), bigDigest.toString('hex')], 'each queue read back exactly');
      for (const s of received) s.resetAndDestroy();
      await assertNothingHeld(d, metrics, fds, [c]);
      process.stdout.write(
        `      with --max-held-socket-bytes ${mib(2.5 * BIG)}: soccrd peak RSS ${mib(peakWithBudget)} (${mib(before)} before the three streams); the host's TCP memory with the two held: ${mib(tcpMem)} (sockstat)\n`,
      );
    } finally {
      c.close();
      await receiver.close();
      for (const s of received) s.destroy();
    }

    // --- with the default budget (here it fits all three): the memory the budget saved ---
    const other = await daemonWith([]);
    const c2 = clientOf(other.d);
    try {
      const before2 = peakRss(other.d.pid);
      const outcomes = await threeAtOnce(c2);
      const peak = peakRss(other.d.pid);
      const ok = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      for (const s of ok) await c2.abort(s.sessionId);
      // Only where the host's default (half of tcp_mem's pressure threshold) fits three does every one pass.
      const limit = defaultBudgetLimits().kernelBytes;
      if (limit >= 3 * BIG) assert.equal(ok.length, 3, outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'OK')).join('; '));
      process.stdout.write(
        `      with the default budget (${mib(limit)} of held sockets): ${ok.length} of 3 held, soccrd peak RSS ${mib(peak)} (${mib(before2)} before)\n`,
      );
      await assertNothingHeld(other.d, other.metrics, other.fds, [c2]);
    } finally {
      c2.close();
    }
  });

  it('buffered bytes: a stream still sending its queue holds its share; another that would pass --max-buffered-bytes fails at once, the first completes exactly', async () => {
    const part = 16 * MiB;
    const { d, metrics, fds } = await daemonWith(['--max-buffered-bytes', String(Math.floor(1.5 * part))]);
    const c = clientOf(d);
    try {
      const data = big.subarray(0, part);
      const digest = createHash('sha256').update(data).digest();
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      // Stream A: header, connection, one chunk; the rest once B has been refused.
      const a = c.restore(
        { netns: topo.nsPath(ns) },
        (async function* () {
          let n = 0;
          for (const f of streamOf('a', 6200, data, digest)) {
            yield f;
            if (++n === 3) await gate;
          }
        })(),
      );
      a.catch(() => undefined);
      await until(
        'buffered bytes of stream A',
        () => budgetUsed(metrics),
        (u) => u.buffered === part,
        20_000,
      );
      const sessionsBefore = (await c.listSessions()).length;
      const b = await c.restore({ netns: topo.nsPath(ns) }, streamOf('b', 6201, data, digest)).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(isServiceError(b), `B: ${String(b)}`);
      assert.equal(grpc.status[b.code], 'RESOURCE_EXHAUSTED', b.details);
      assert.equal(soccrErrorOf(b)?.kind, 'LIMIT');
      assert.match(b.details, /budget of queue bytes buffered by streams.*--max-buffered-bytes/);
      const sessions = await c.listSessions();
      assert.equal(sessions.length, sessionsBefore + 1, "B's session was made at its header");
      assert.equal(sessionStateName(sessions[sessions.length - 1].state), 'ABORTED', "B's session ended without a socket");
      assert.deepEqual(await budgetUsed(metrics), { buffered: part, kernel: part }, 'A still holds its share, B nothing');
      assert.equal(tcpSockets(ns).length, 0, 'no socket of B (nor yet of A)');
      release();
      const s = await a;
      assert.equal(sessionStateName(s.state), 'HELD');
      assert.equal(s.connections[0].recvQueueLen, part);
      assert.deepEqual(await budgetUsed(metrics), { buffered: 0, kernel: part }, 'the rebuilt queue moved from the buffered pool to the kernel one');
      await c.abort(s.sessionId);
      await assertNothingHeld(d, metrics, fds, [c]);
    } finally {
      c.close();
    }
  });

  it("direct transfers: a Restore's data-connection read-ahead is charged before it reads anything", async () => {
    const { d, metrics, fds } = await daemonWith(['--max-buffered-bytes', '1M', '--data-listen', '127.0.0.1:0']);
    const c = clientOf(d);
    try {
      const err = await c.restore({ netns: topo.nsPath(ns), dataTransfer: { transferId: randomBytes(16), key: randomBytes(32), timeoutMs: 20_000 } }, []).then(
        () => 'succeeded',
        (e: unknown) => e,
      );
      assert.ok(isServiceError(err), `restore: ${String(err)}`);
      assert.equal(grpc.status[err.code], 'RESOURCE_EXHAUSTED', err.details);
      assert.equal(soccrErrorOf(err)?.kind, 'LIMIT');
      assert.match(err.details, /read-ahead of its direct data connection.*--max-buffered-bytes/);
      await assertNothingHeld(d, metrics, fds, [c]);
    } finally {
      c.close();
    }
  });

  it('checkpoint: queues that would pass --max-buffered-bytes fail the Checkpoint before they are read; the source goes on', async () => {
    const { d, metrics, fds } = await daemonWith(['--max-buffered-bytes', String(64 * KiB)]);
    const c = clientOf(d);
    try {
      const p = await connectPair('ipv4', 1);
      // Neither side reads (connectPair): the owner's receive queue fills past the budget.
      await p.peer.command('write', { bytes: 512 * KiB });
      await until(
        'queued bytes at the owner',
        () => listTcpSockets(p.owner.pid).find((e) => e.fd === p.owner.connectedFd)?.recvQueue ?? 0,
        (n) => n > 128 * KiB,
        10_000,
      );
      const err = await (async () => {
        let frames = 0;
        for await (const f of c.checkpoint(p.owner.pid, { fds: [p.owner.connectedFd], leaseMs: 60_000, noNetworkLock: true })) if (f) frames++;
        return frames;
      })().then(
        (frames) => `succeeded with ${frames} frames`,
        (e: unknown) => e,
      );
      assert.ok(isServiceError(err), `checkpoint: ${String(err)}`);
      assert.equal(grpc.status[err.code], 'RESOURCE_EXHAUSTED', err.details);
      assert.equal(soccrErrorOf(err)?.kind, 'LIMIT');
      const source = (await c.listSessions()).filter((s) => s.pid === p.owner.pid);
      assert.deepEqual(
        source.map((s) => sessionStateName(s.state)),
        ['RESUMED'],
        'the source was thawed',
      );
      assert.deepEqual(await budgetUsed(metrics), { buffered: 0, kernel: 0 });
      // The connection goes on at its owner: every byte exactly once, both ways.
      await p.owner.command('read', { on: true });
      await p.peer.command('read', { on: true });
      const o0 = await p.owner.status();
      const q0 = await p.peer.status();
      await p.owner.command('write', { bytes: 64 * KiB });
      await p.peer.command('write', { bytes: 64 * KiB });
      const q1 = await p.peer.until((st) => st.received === o0.sent + 64 * KiB, 15_000, 'owner bytes at the peer');
      const o1 = await p.owner.until((st) => st.received === q0.sent + 64 * KiB, 15_000, 'peer bytes at the owner');
      for (const st of [q1, o1]) {
        assert.equal(st.mismatchAt, -1, 'a wrong byte');
        assert.equal(st.error, null);
        assert.equal(st.eof, false);
      }
      await assertNothingHeld(d, metrics, fds, [c]);
    } finally {
      c.close();
    }
  });
});
