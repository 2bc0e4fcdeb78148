// Across hosts a listener cannot move, but the connections waiting in its accept queue can: a server in
// host A with live connections streaming and a backlog of connections it never accepted (clients
// connected and sending, the owner not accepting) is migrated to a new owner in host B by migrate();
// every backlog connection must arrive there as an established connection, and every byte of every
// connection go exactly both ways, with no RST and no FIN at the clients. The report names the
// listener, left in A, with how many queued connections were taken.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoccrClient } from '../client/client';
import { migrate } from '../client/migrate';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { LAN_NODES, Lan, SERVICE_V4, destroyLans, leftoverLanNamespaces } from '../lab/lan';
import { MultiFixture, killAllMulti, queuedOffsets, untilExchanged } from '../lab/multi';
import { sleep } from '../lab/scenario';
import { TcpState as WireTcpState } from '../protocol/generated/soccr/v1/TcpState';

const PORT = 5000;
const TCP_ESTABLISHED = 1;

describe('backlog: connections waiting in an accept queue migrate to another host', function () {
  this.timeout(120_000);
  let dir: string | undefined;

  afterEach(async () => {
    await killAllMulti();
    await cleanupDaemons();
    destroyLans();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  after(() => {
    assert.deepEqual(leftoverLanNamespaces(), [], 'LAN namespaces left behind');
  });

  it('4 live connections and 6 unaccepted ones, all streaming, reach the new owner in B exact both ways, no RST, no FIN', async () => {
    const live = 4;
    const queued = 6;
    const lan = Lan.create();
    const [a, b] = await Promise.all([
      DaemonProcess.start({ netns: lan.ns.A }),
      DaemonProcess.start({ netns: lan.ns.B, args: ['--data-listen', `${LAN_NODES.B.v4}:0`] }),
    ]);
    const stream = { streaming: true, bytesPerTick: 4096 };
    // The listener stays open for the queued ones (acceptMore), but the server, quiesced, never accepts them.
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: live, acceptMore: queued, ...stream });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: live, ...stream });
    await Promise.all([server.waitConnected(15_000), clients.waitConnected(15_000)]);
    await server.accept(false); // the live ones stream on
    const late = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: queued, firstIndex: live, ...stream });
    await late.waitConnected(15_000); // the kernel completed their handshakes: they wait in the queue
    await sleep(500); // and send meanwhile, into sockets nobody has accepted

    const src = new SoccrClient(a.address);
    try {
      const listener = (await src.listSockets(server.pid)).find((s) => s.state === WireTcpState.TCP_STATE_LISTEN);
      assert.ok(listener, 'the server listens');
      assert.equal(listener.recvQueue, queued, 'the listener holds the unaccepted connections in its queue');
    } finally {
      src.close();
    }

    // The new owner goes on from the old one's offsets; the queued connections from the start of their streams.
    const fromStart = queuedOffsets({ family: 'ipv4', ip: SERVICE_V4, port: PORT }, LAN_NODES.C.v4, live, queued);
    dir = mkdtempSync(join(tmpdir(), 'soccrt-backlog-'));
    const deliver = join(dir, 'handover.sock');
    const next = await MultiFixture.start(lan.ns.B, {
      mode: 'adopt',
      unixPath: deliver,
      count: live + queued,
      continueFrom: fromStart,
      ...stream,
    });
    const { offsets } = await server.quiesce();
    await next.continueFrom(offsets);
    const report = await migrate({
      from: a.address,
      to: b.address,
      pid: server.pid,
      netns: lan.nsPath('B'),
      deliverUnixPath: deliver,
      beforeResume: lan.moveServiceCommand('A', 'B'),
      timeoutMs: 10_000,
    });
    assert.equal(report.connections, live + queued, 'the live connections and the queued ones moved');
    const skippedListener = report.skipped.find((s) => s.kind === 'LISTENING');
    assert.ok(skippedListener, `the listener is reported as left in A: ${JSON.stringify(report.skipped)}`);
    assert.match(skippedListener.reason, new RegExp(`^listener stays; ${queued} queued connection\\(s\\) taken`));
    await next.waitConnected(15_000);

    await sleep(1000); // streaming from B
    server.kill();
    await server.exited();
    await sleep(500);
    await Promise.all([next, clients, late].map((f) => f.stream(false)));
    const [ns, cs] = await untilExchanged(next, [clients, late], 30_000);
    assert.equal(ns.connections.length, live + queued);
    for (const c of cs.connections) {
      assert.equal(c.state, TCP_ESTABLISHED, `client ${c.key} still established`);
      assert.ok(!c.eof && c.error === null, `client ${c.key}: no FIN, no RST`);
    }
    for (const c of ns.connections.filter((x) => x.index >= live)) {
      assert.equal(c.handedState, 'ESTABLISHED', `${c.key} arrived established`);
      assert.ok(c.sent > 0 && c.received > 0, `queued connection ${c.key} carried bytes both ways at B: ${c.sent}/${c.received}`);
    }
    process.stdout.write(
      `      ${live} live + ${queued} queued connections moved A -> B; freeze ${report.freezeMs.toFixed(1)} ms; C -> server ${cs.totals.sent} B, server -> C ${cs.totals.received} B, exact\n`,
    );
  });
});
