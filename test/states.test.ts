// Connections in the rarer shapes CRIU also carries (issue 14), through a real daemon: both ends of a
// connection inside one process, checkpointed and restored together in another namespace.
import { strict as assert } from 'node:assert';
import { SessionState, SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { MultiFixture, killAllMulti, untilSelfExchanged } from '../lab/multi';
import { Topology, leftoverNamespaces } from '../lab/netns';
import { KiB, sleep, socketPath } from '../lab/scenario';
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
});
