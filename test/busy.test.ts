// Sessions that a call in flight is using (issue 9): a real soccrd, real connections in network
// namespaces. (1) A hand-over of 200 connections to a receiver that accepts but does not read for a few
// seconds, so that the daemon's sends wait on a full socket buffer; meanwhile Abort, Release, Resume and
// RenewLease of that session, and calls that open fds in the daemon (new gRPC connections, ListSockets).
// Those four must get FAILED_PRECONDITION, and every fd the receiver gets must be one of the connections
// (a TCP socket with the expected addresses), never a descriptor the daemon opened after a premature
// close. (2) An Abort while the session's Restore stream is still coming in ends it for good. (3) The
// client's Resume outlasts a hand-over that takes longer than its other calls' deadline.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_TIMEOUT_MS, SessionKind, SessionState, SoccrClient, readCheckpointFile, sessionStateName } from '../client/client';
import type { FrameMsg } from '../protocol/messages';
import { frameKind } from '../protocol/frames';
import { localAddress, peerAddress } from '../daemon/repair/engine';
import * as N from '../daemon/kernel/native';
import type { SocketAddress } from '../protocol/address';
import { DaemonProcess, cleanupDaemons, daemonLogs, expectStatus } from '../lab/daemon';
import { MultiFixture, killAllMulti } from '../lab/multi';
import { SERVICE_V4, Topology, leftoverNamespaces, lockEntries, tcpSockets } from '../lab/netns';
import { sleep } from '../lab/scenario';

/** More connections than a Unix socket buffers hand-over messages of (about 167 here): sending must wait. */
const CONNECTIONS = 200;
const PORT = 5301;
const CLIENT_PORT_BASE = 43000;
/** How long the receiver holds the hand-over unread. */
const STALL_MS = 3000;

const key = (local: SocketAddress, remote: SocketAddress): string => `${local.ip}:${local.port}>${remote.ip}:${remote.port}`;

/**
 * The receiving end of a hand-over, by hand: listens, accepts at once, reads nothing until told to, then
 * checks each fd that arrives against the connections expected (kind of socket, and its own addresses as
 * the kernel reports them for that fd) and acknowledges only if every one is right.
 */
class StallingReceiver {
  private readonly listenFd: number;
  private connFd = -1;
  private readonly buf = N.pinned(64 * 1024);
  readonly received: number[] = [];
  readonly problems: string[] = [];
  lines: Array<{ type: string; index?: number; local?: SocketAddress; remote?: SocketAddress; count?: number; reason?: string }> = [];

  constructor(readonly path: string) {
    this.listenFd = N.socket(N.AF_UNIX, N.SOCK_STREAM | N.SOCK_NONBLOCK | N.SOCK_CLOEXEC, 0);
    const { addr, len } = N.unixSockaddr(path);
    N.bind(this.listenFd, addr, len);
    N.listen(this.listenFd, 4);
  }

  async accept(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.connFd = N.accept(this.listenFd, N.SOCK_CLOEXEC | N.SOCK_NONBLOCK);
        return;
      } catch (err) {
        if (!(err instanceof N.SyscallError) || err.code !== 'EAGAIN' || Date.now() > deadline) throw err;
      }
      await sleep(5);
    }
  }

  /** Bytes the daemon has queued to us so far. */
  queued(): number {
    return N.ioctlInt(this.connFd, N.SIOCINQ);
  }

  /** Reads until the `end` line (or an abort line, or the daemon closing), checking every fd. */
  async readBatch(expected: Map<string, true>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pending = '';
    const fds: number[] = [];
    for (;;) {
      const m = N.tryRecvFds(this.connFd, this.buf, this.buf.buf.length, N.MSG_DONTWAIT);
      if (m.length === -osEAGAIN) {
        if (Date.now() > deadline) throw new Error(`no end line within ${timeoutMs} ms (${this.lines.length} lines)`);
        await sleep(2);
        continue;
      }
      if (m.length < 0) throw new N.SyscallError('recvmsg', -m.length);
      for (const fd of m.fds) {
        this.received.push(fd);
        fds.push(fd);
      }
      if (m.length === 0) return; // closed by the daemon
      pending += this.buf.buf.subarray(0, m.length).toString('utf8');
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = JSON.parse(pending.slice(0, nl)) as StallingReceiver['lines'][number];
        pending = pending.slice(nl + 1);
        this.lines.push(line);
        if (line.type === 'socket') this.check(fds.shift(), line, expected);
        if (line.type === 'end' || line.type === 'abort') return;
      }
    }
  }

  private check(fd: number | undefined, line: StallingReceiver['lines'][number], expected: Map<string, true>): void {
    const what = `connection ${line.index ?? '(no index)'}`;
    if (fd === undefined) {
      this.problems.push(`${what}: no fd came with it`);
      return;
    }
    try {
      const domain = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.DOMAIN);
      const type = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.TYPE);
      const protocol = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.PROTOCOL);
      if (domain !== N.AF_INET || type !== N.SOCK_STREAM || protocol !== N.IPPROTO_TCP) {
        this.problems.push(`${what}: fd is domain ${domain}, type ${type}, protocol ${protocol}, not a TCP/IPv4 socket`);
        return;
      }
      const local = localAddress(fd);
      const remote = peerAddress(fd, 'ipv4');
      const k = key(local, remote);
      if (!expected.has(k)) this.problems.push(`${what}: fd is ${k}, not one of the connections`);
      else if (!line.local || !line.remote || key(line.local, line.remote) !== k) this.problems.push(`${what}: fd is ${k}, its line says otherwise`);
      expected.delete(k);
    } catch (err) {
      this.problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  send(msg: object): void {
    const b = Buffer.from(`${JSON.stringify(msg)}\n`);
    b.copy(this.buf.buf);
    N.send(this.connFd, this.buf, 0, b.length, N.MSG_NOSIGNAL);
  }

  close(): void {
    for (const fd of this.received.splice(0)) N.closeQuietly(fd);
    if (this.connFd >= 0) N.closeQuietly(this.connFd);
    this.connFd = -1;
    N.closeQuietly(this.listenFd);
  }
}

const osEAGAIN = 11;

describe('a session busy with another call (issue 9)', function () {
  this.timeout(180_000);
  let topo: Topology;
  let daemon: DaemonProcess;
  let client: SoccrClient;
  let dir: string;
  let file: string;
  let expected: string[];
  const extraClients: SoccrClient[] = [];
  const receivers: StallingReceiver[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'soccrt-busy'));
    topo = Topology.create(3);
    daemon = await DaemonProcess.start(['--lease-ms', '60000', '--log-level', 'warn', '--lock-grace-ms', '0', '--max-calls-per-caller', '512']);
    client = new SoccrClient(daemon.address, { timeoutMs: 30_000 });
    // The connections: served in host 0, their clients in the peer namespace; checkpointed to a file, the
    // source released and its owner killed (its frozen sockets close silently), so that the file can be
    // restored as the only copy.
    const server = await MultiFixture.start(topo.hosts[0], { mode: 'serve', ip: SERVICE_V4, port: PORT, count: CONNECTIONS, clientPortBase: CLIENT_PORT_BASE });
    const clients = await MultiFixture.start(topo.peer, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: CONNECTIONS, clientPortBase: CLIENT_PORT_BASE });
    await Promise.all([server.waitConnected(30_000), clients.waitConnected(30_000)]);
    const { status } = await server.quiesce();
    expected = status.connections.map((c) => key(c.local, c.remote));
    assert.equal(expected.length, CONNECTIONS);
    file = join(dir, 'conns.soccr');
    const ck = await client.checkpointToFile(server.pid, { all: true, stopOwner: true }, file);
    assert.equal(ck.connections, CONNECTIONS);
    assert.equal((await client.release(ck.header.sessionId)).state, SessionState.RELEASED);
    server.kill();
    await server.exited();
  });

  after(async () => {
    for (const r of receivers) r.close();
    for (const c of extraClients) c.close();
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

  it(`Abort, Release, Resume and RenewLease during a hand-over of ${CONNECTIONS} connections get FAILED_PRECONDITION; every fd handed over is one of the connections`, async () => {
    const target = topo.hosts[1];
    const held = await client.restoreFromFile(file, { netns: topo.nsPath(target), goLive: false, leaseMs: 60_000 });
    assert.equal(held.state, SessionState.HELD);
    assert.equal(held.connections.length, CONNECTIONS);

    const receiver = new StallingReceiver(join(dir, 'handover.sock'));
    receivers.push(receiver);
    const resumed = client.resume(held.sessionId, receiver.path);
    resumed.catch(() => undefined);
    await receiver.accept(10_000);
    // Wait until the daemon's sends stop on the full buffer.
    let queued = -1;
    for (let i = 0; i < 100 && receiver.queued() !== queued; i++) {
      queued = receiver.queued();
      await sleep(50);
    }
    const stalledAt = Date.now();

    // Meanwhile: calls on the busy session, then calls that make the daemon open fds (20 new gRPC
    // connections kept open, ListSockets reading procfs): fd numbers a premature close would have freed
    // are taken again at once.
    const [abort, release, resume, renew] = await Promise.all([
      expectStatus(client.abort(held.sessionId), grpc.status.FAILED_PRECONDITION, 'Abort during the hand-over'),
      expectStatus(client.release(held.sessionId), grpc.status.FAILED_PRECONDITION, 'Release during the hand-over'),
      expectStatus(client.resume(held.sessionId, receiver.path), grpc.status.FAILED_PRECONDITION, 'a second Resume during the hand-over'),
      expectStatus(client.renewLease(held.sessionId), grpc.status.FAILED_PRECONDITION, 'RenewLease during the hand-over'),
    ]);
    for (let i = 0; i < 20; i++) extraClients.push(new SoccrClient(daemon.address, { timeoutMs: 30_000 }));
    await Promise.all([...extraClients.map((c) => c.getVersion()), ...extraClients.map(() => client.listSockets(process.pid))]);
    for (const e of [abort, resume, renew]) {
      assert.equal(e.metadata.get('soccr-kind')[0], 'SESSION_BUSY');
      assert.match(e.details, /hand-over of its sockets is in flight/);
    }
    assert.match(release.details, /is a restore session|busy/);
    // More calls that open fds while the receiver still reads nothing.
    while (Date.now() - stalledAt < STALL_MS) {
      await Promise.all(extraClients.map((c) => c.listSockets(process.pid)));
      await sleep(100);
    }
    assert.equal((await client.getSession(held.sessionId)).state, SessionState.HELD, 'still held while the hand-over waits');

    // Now the receiver reads: every fd must be one of the connections, each exactly once.
    const want = new Map(expected.map((k) => [k, true as const]));
    await receiver.readBatch(want, 20_000);
    assert.deepEqual(receiver.problems, [], 'every fd received is a connection with its addresses');
    assert.equal(receiver.received.length, CONNECTIONS);
    assert.equal(want.size, 0, 'every connection arrived');
    assert.deepEqual(receiver.lines[receiver.lines.length - 1], { type: 'end', count: CONNECTIONS });
    receiver.send({ type: 'ack', count: CONNECTIONS });
    const info = await resumed;
    assert.equal(info.state, SessionState.RESUMED);
    assert.ok(info.connections.every((c) => c.delivered));
    assert.equal((await client.getSession(held.sessionId)).state, SessionState.RESUMED);
    assert.equal(lockEntries(target, daemon.lockTable), 0, 'unlocked once live');
    receiver.close();
  });

  it('an Abort while the Restore stream is coming in ends the session for good: the stream fails, nothing stays', async () => {
    const target = topo.hosts[0];
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const rebuiltBeforeAbort = 20;
    async function* frames(): AsyncGenerator<FrameMsg> {
      let ended = 0;
      for await (const f of readCheckpointFile(file)) {
        yield f;
        if (frameKind(f) === 'end' && ++ended === rebuiltBeforeAbort) await gate;
      }
    }
    const restoring = client.restore({ netns: topo.nsPath(target), goLive: false, leaseMs: 60_000 }, frames());
    restoring.catch(() => undefined);
    // The session, once the daemon has rebuilt the connections sent so far.
    let id = '';
    for (let i = 0; i < 200 && !id; i++) {
      const s = (await client.listSessions()).find(
        (x) => x.kind === SessionKind.RESTORE && x.state === SessionState.FROZEN && x.connections.length >= rebuiltBeforeAbort,
      );
      if (s) id = s.sessionId;
      else await sleep(50);
    }
    assert.ok(id, 'the restore session shows while its stream is open');
    const aborted = await client.abort(id);
    assert.equal(aborted.state, SessionState.ABORTED);
    open();
    const err = await expectStatus(restoring, grpc.status.FAILED_PRECONDITION, 'the Restore stream of an aborted session');
    assert.match(err.details, /ABORTED/);
    const after = await client.getSession(id);
    assert.equal(sessionStateName(after.state), 'ABORTED', 'the session stays ABORTED');
    assert.equal(after.connections.length, rebuiltBeforeAbort, 'nothing was rebuilt after the Abort');
    assert.deepEqual(
      tcpSockets(target).filter((l) => l.includes(`:${PORT} `)),
      [],
      'no rebuilt socket left',
    );
    assert.equal(lockEntries(target, daemon.lockTable), 0, 'no lock entry left');
  });

  it("Resume with the client library's default deadline outlasts a hand-over that takes longer than that deadline", async () => {
    const target = topo.hosts[2];
    const held = await client.restoreFromFile(file, { netns: topo.nsPath(target), goLive: false, leaseMs: 60_000 });
    const receiver = new StallingReceiver(join(dir, 'handover-slow.sock'));
    receivers.push(receiver);
    const plain = new SoccrClient(daemon.address); // every other call's deadline: DEFAULT_TIMEOUT_MS
    extraClients.push(plain);
    await plain.getVersion();
    const t0 = Date.now();
    const resumed = plain.resume(held.sessionId, receiver.path);
    resumed.catch(() => undefined);
    await receiver.accept(10_000);
    // The receiver acknowledges only after the default deadline, well within the daemon's hand-over bound.
    await sleep(DEFAULT_TIMEOUT_MS + 2000);
    const want = new Map(expected.map((k) => [k, true as const]));
    await receiver.readBatch(want, 20_000);
    assert.deepEqual(receiver.problems, []);
    assert.equal(want.size, 0, 'every connection arrived');
    receiver.send({ type: 'ack', count: CONNECTIONS });
    const info = await resumed;
    assert.equal(info.state, SessionState.RESUMED);
    assert.ok(Date.now() - t0 > DEFAULT_TIMEOUT_MS, 'the hand-over took longer than the default deadline');
    receiver.close();
  });
});
