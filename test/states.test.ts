// Connections in the rarer shapes CRIU also carries (issue 14), through a real daemon: both ends of a
// connection inside one process, checkpointed and restored together in another namespace.
import { strict as assert } from 'node:assert';
import { SessionState, SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { MultiFixture, killAllMulti, untilSelfExchanged } from '../lab/multi';
import { PEER_V4, Topology, leftoverNamespaces } from '../lab/netns';
import { TcpState, stateName } from '../protocol/saved-state';
import { Endpoint, killAllEndpoints } from '../lab/endpoint';
import { KiB, OWNER_TO_PEER, PEER_TO_OWNER, connectPair, destroyTopologies, receiverFor, sleep, socketPath, verifyStreams } from '../lab/scenario';
import { captureTcp, stopCaptures } from '../lab/capture';

/** Longer than a first retransmission timeout and a zero-window probe (1 s each). */
const HOLD_MS = 3000;

describe('connection shapes (issue 14)', function () {
  this.timeout(120_000);
  let daemon: DaemonProcess;
  let client: SoccrClient;
  const topologies: Topology[] = [];

  beforeEach(async () => {
    daemon = await DaemonProcess.start(['--lease-ms', '20000']);
    client = new SoccrClient(daemon.address);
  });

  afterEach(async function () {
    client.close();
    stopCaptures();
    if (this.currentTest?.state === 'failed') process.stderr.write(`--- soccrd output ---\n${daemon.output.slice(-4000)}\n`);
    await killAllMulti();
    await killAllEndpoints();
    destroyTopologies();
    await cleanupDaemons();
    for (const t of topologies.splice(0)) t.destroy();
  });

  after(() => {
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  /**
   * A process with two connections to itself (both ends of each), streaming both ways until half of the
   * ends stop reading (receive queues fill; send queues hold bytes in flight and never sent), is
   * checkpointed whole; its restore in the second host hands all four ends to one new process.
   * `held`: the restore is held without any network lock for HOLD_MS, a capture on the namespace's
   * loopback (where the ends talk to each other) must see nothing, then Resume makes them live.
   */
  async function moveSelfPairs(held: boolean): Promise<void> {
    const topo = Topology.create(2);
    topologies.push(topo);
    const port = 6100;
    const owner = await MultiFixture.start(topo.hosts[0], { mode: 'self', ip: '127.0.0.1', port, count: 2, clientPortBase: 41_000, streaming: true });
    await owner.waitConnected(10_000);
    await sleep(300);
    await owner.read(false, { stride: 2 });
    await owner.write(512 * KiB);
    await sleep(300);
    const { status: before, offsets } = await owner.quiesce();
    assert.equal(before.connections.length, 4, 'both ends of both connections');

    const file = socketPath('self').replace(/\.sock$/, '.soccr');
    const ck = await client.checkpointToFile(owner.pid, { all: true, stopOwner: true }, file);
    assert.equal(ck.connections, 4, 'every end was taken');
    assert.ok(ck.queueBytes > 256 * KiB, `queues travelled with the state (${ck.queueBytes} bytes)`);
    await client.release(ck.header.sessionId);
    owner.kill();
    await owner.exited();

    const path = socketPath('self-deliver');
    const adopter = await MultiFixture.start(topo.hosts[1], { mode: 'adopt', unixPath: path, continueFrom: offsets });
    const netns = topo.nsPath(topo.hosts[1]);
    if (held) {
      const capture = await captureTcp(topo.hosts[1], 'lo');
      const h = await client.restoreFromFile(file, { netns, noNetworkLock: true });
      assert.equal(h.state, SessionState.HELD);
      await sleep(HOLD_MS);
      assert.deepEqual(await capture.stop(), [], 'segments between the held ends');
      assert.equal((await client.resume(h.sessionId, path)).state, SessionState.RESUMED);
    } else {
      const restored = await client.restoreFromFile(file, { netns, deliverUnixPath: path, goLive: true });
      assert.equal(restored.state, SessionState.RESUMED);
    }
    await adopter.waitConnected(10_000);
    // New bytes both ways on every connection, on top of what was in flight.
    await adopter.write(256 * KiB);
    const [servers, clients] = await untilSelfExchanged(adopter, port, 30_000);
    assert.equal(servers.connections.length + clients.connections.length, 4);
    for (const c of [...servers.connections, ...clients.connections]) {
      const was = offsets[c.key];
      assert.ok(c.sent > was.sent && c.received > was.received, `${c.key} went on both ways`);
    }
  }

  it('both ends of loopback connections in one process: checkpointed together, restored together (locked) in another namespace, each the peer of the other, every byte both ways', async () => {
    await moveSelfPairs(false);
  });

  it(`both ends of loopback connections in one process: held ${HOLD_MS / 1000} s without a lock, the ends send each other nothing; then live, every byte both ways`, async () => {
    await moveSelfPairs(true);
  });

  /**
   * The peer resets the connection (SO_LINGER 0) after sending bytes the owner reads (`unread` false)
   * or does not read; the owner's socket is then in CLOSE, in no TCP table, its ECONNRESET pending.
   * --all takes it; restored in another namespace, the new owner reads what was unread, then the end.
   */
  async function moveReset(unread: boolean): Promise<void> {
    const p = await connectPair('ipv4', 2);
    if (!unread) await p.owner.command('read', { on: true });
    await p.peer.command('write', { bytes: 48 * KiB });
    const peerAt = await p.peer.until((s) => s.pending === 0, 10_000, 'the peer bytes handed to its kernel');
    if (!unread) {
      await p.owner.until((s) => s.received === peerAt.sent, 10_000, 'every peer byte read by the owner');
      await p.owner.command('read', { on: false }); // a read after the RST would take its error
    }
    await sleep(200);
    await p.peer.command('reset');
    await sleep(200);
    const at = await p.owner.command('quiesce');
    assert.equal(peerAt.sent > at.received, unread, 'bytes the owner did not read');

    const file = socketPath('reset').replace(/\.sock$/, '.soccr');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true, stopOwner: true }, file);
    assert.equal(ck.connections, 1, 'the reset connection was taken');
    assert.equal(ck.queueBytes, peerAt.sent - at.received, 'its unread bytes, and nothing of its send queue');
    await client.release(ck.header.sessionId);
    p.owner.kill();
    await p.owner.exited();

    const path = socketPath('deliver-reset');
    const receiver = await receiverFor(p, 1, path, at);
    const restored = await client.restoreFromFile(file, { netns: p.topo.nsPath(p.topo.hosts[1]), deliverUnixPath: path, goLive: true });
    assert.equal(restored.state, SessionState.RESUMED);
    assert.equal(restored.connections[0]?.state, TcpState.CLOSE);
    await receiver.waitEvent('connected', 10_000);
    const end = await receiver.until((s) => s.eof || s.error !== null, 10_000, 'the end of the reset connection');
    assert.equal(end.error, null, 'no error at the new owner');
    assert.equal(end.mismatchAt, -1, 'every byte right');
    assert.equal(end.received, peerAt.sent, 'every byte the peer sent before its RST');
  }

  it('a connection reset by its peer, unread bytes and the error pending: --all takes it; the new owner reads every byte, then the end (as CRIU restores it)', async () => {
    await moveReset(true);
  });

  it('a connection reset by its peer, everything read, only the error pending: --all takes it; the new owner reads the end (as CRIU restores it)', async () => {
    await moveReset(false);
  });

  it('a connect in progress (the peer drops its SYNs): checkpointed in SYN_SENT, restored held in another namespace, completed there once the peer answers; every byte both ways', async () => {
    const topo = Topology.create(2);
    topologies.push(topo);
    const port = 6200;
    const peer = await Endpoint.start(topo.peer, { mode: 'listen', ip: PEER_V4, port, sendSeed: PEER_TO_OWNER, recvSeed: OWNER_TO_PEER });
    topo.blackhole(0); // the peer hears nothing from host 0: its connect stays in SYN_SENT
    const owner = await Endpoint.start(topo.hosts[0], {
      mode: 'connect',
      ip: PEER_V4,
      port,
      sendSeed: OWNER_TO_PEER,
      recvSeed: PEER_TO_OWNER,
      connectPending: true,
    });
    await owner.waitEvent('connected', 10_000);
    await sleep(1500); // a SYN retransmitted into the cut
    const listed = await client.listSockets(owner.pid);
    assert.deepEqual(
      listed.map((s) => stateName(s.state)),
      ['SYN_SENT'],
      'the connect in progress',
    );
    const at = await owner.command('quiesce');

    const file = socketPath('syn-sent').replace(/\.sock$/, '.soccr');
    const ck = await client.checkpointToFile(owner.pid, { all: true, stopOwner: true }, file);
    assert.equal(ck.connections, 1, 'the connect in progress was taken');
    await client.release(ck.header.sessionId);
    owner.kill();
    await owner.exited();

    const held = await client.restoreFromFile(file, { netns: topo.nsPath(topo.hosts[1]) });
    assert.equal(held.state, SessionState.HELD);
    assert.equal(held.connections[0]?.state, TcpState.SYN_SENT);
    topo.routeTo(1); // the peer answers host 1 from now on
    const path = socketPath('deliver-syn-sent');
    const receiver = await receiverFor({ topo, owner, peer }, 1, path, at);
    assert.equal((await client.resume(held.sessionId, path)).state, SessionState.RESUMED);
    await receiver.waitEvent('connected', 10_000);
    await peer.waitEvent('connected', 10_000);
    await verifyStreams(peer, receiver, { state: TcpState.ESTABLISHED, unread: false, unacked: false, unsent: false, ownerClosed: false, peerClosed: false });
  });
});
