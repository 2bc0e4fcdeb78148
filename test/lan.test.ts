// Smoke test of the live-migration test bench: the LAN (bridge, hosts A and B, clients C, a service
// address that moves with announcements), the multi fixture streaming exact bytes over many
// connections, and soccrd daemons running inside the host namespaces.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { LAN_NODES, Lan, SERVICE_V4, SERVICE_V6, destroyLans, leftoverLanNamespaces } from '../lab/lan';
import { MultiFixture, killAllMulti, untilExchanged } from '../lab/multi';
import { clientSeed, serverSeed } from '../lab/multi-data';
import { sleep } from '../lab/scenario';

/** Polls `f` until it returns a value that is not undefined; bounded. */
async function eventually<T>(f: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('LAN test bench for live migration', function () {
  this.timeout(60_000);

  afterEach(async () => {
    await killAllMulti();
    await cleanupDaemons();
    destroyLans();
  });

  after(() => {
    assert.deepEqual(leftoverLanNamespaces(), [], 'LAN namespaces left behind');
  });

  it('20 connections carry exact bytes both ways; the service address moves to B and back, announced', async () => {
    const lan = Lan.create();
    assert.equal(lan.serviceHost(), 'A');
    assert.ok(lan.addresses('A').includes(LAN_NODES.A.v4));

    const serve = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: 5000, count: 20 });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: 5000, count: 20 });
    // A few over IPv6 too, so that C has a neighbour entry for the v6 service address.
    const serve6 = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V6, port: 5006, count: 4, clientPortBase: 41_000 });
    const clients6 = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V6, port: 5006, count: 4, clientPortBase: 41_000 });
    const all = [serve, clients, serve6, clients6];
    await Promise.all(all.map((f) => f.waitConnected(10_000)));

    await Promise.all(all.map((f) => f.stream(true)));
    await sleep(1000);
    await Promise.all(all.map((f) => f.stream(false)));
    const [s, c] = await untilExchanged(serve, clients, 15_000);
    await untilExchanged(serve6, clients6, 15_000);
    assert.equal(s.connections.length, 20);
    for (const conn of s.connections) {
      assert.equal(conn.sendSeed, serverSeed(conn.index));
      assert.equal(conn.recvSeed, clientSeed(conn.index));
      assert.ok(conn.sent > 64 * 1024 && conn.received > 64 * 1024, `${conn.key} streamed both ways: ${conn.sent}/${conn.received}`);
    }
    assert.deepEqual(new Set(c.connections.map((x) => x.local.port)), new Set(Array.from({ length: 20 }, (_, i) => 40_000 + i)));
    process.stdout.write(`      20 connections: ${s.totals.sent} bytes A->C, ${s.totals.received} bytes C->A, exact\n`);

    assert.equal(lan.neighbour(SERVICE_V4)?.lladdr, LAN_NODES.A.mac, 'C reaches the v4 service address at A');
    assert.equal(lan.neighbour(SERVICE_V6)?.lladdr, LAN_NODES.A.mac, 'C reaches the v6 service address at A');
    // Let delayed ACKs go out while A still holds the address (B would answer them with a RST).
    await sleep(300);

    lan.moveServiceAddress('A', 'B');
    assert.ok(!lan.addresses('A').includes(SERVICE_V4) && !lan.addresses('A').includes(SERVICE_V6), 'gone from A');
    assert.ok(lan.addresses('B').includes(SERVICE_V4) && lan.addresses('B').includes(SERVICE_V6), 'now on B');
    assert.equal(lan.serviceHost(), 'B');
    // The announcement alone moves C's entries: nothing of C's sent a packet since.
    await eventually(() => (lan.neighbour(SERVICE_V4)?.lladdr === LAN_NODES.B.mac ? true : undefined), 2000, "C's v4 entry to move to B");
    await eventually(() => (lan.neighbour(SERVICE_V6)?.lladdr === LAN_NODES.B.mac ? true : undefined), 2000, "C's v6 entry to move to B");

    // Back, through the shell command form (as a migrate hook would run it).
    const cmd = lan.moveServiceCommand('B', 'A');
    execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(lan.serviceHost(), 'A');
    await eventually(() => (lan.neighbour(SERVICE_V4)?.lladdr === LAN_NODES.A.mac ? true : undefined), 2000, "C's v4 entry to move back to A");
    await eventually(() => (lan.neighbour(SERVICE_V6)?.lladdr === LAN_NODES.A.mac ? true : undefined), 2000, "C's v6 entry to move back to A");
    assert.throws(() => lan.moveServiceAddress('B', 'A'), 'B holds nothing to move');
    assert.equal(lan.serviceHost(), 'A');

    // The connections, idle meanwhile, go on.
    await Promise.all(all.map((f) => f.write(32 * 1024)));
    await untilExchanged(serve, clients, 15_000);
    await untilExchanged(serve6, clients6, 15_000);

    await killAllMulti();
    lan.destroy();
    assert.deepEqual(lan.leftover(), [], 'no namespace of the LAN left');
  });

  it('soccrd runs inside A and inside B and answers GetVersion', async () => {
    const lan = Lan.create();
    const [da, db] = await Promise.all([DaemonProcess.start({ netns: lan.ns.A }), DaemonProcess.start({ netns: lan.ns.B, args: ['--lease-ms', '20000'] })]);
    for (const [d, role] of [
      [da, 'A'],
      [db, 'B'],
    ] as const) {
      assert.equal(statSync(`/proc/${d.pid}/ns/net`).ino, statSync(lan.nsPath(role)).ino, `soccrd ${d.pid} runs in ${role}'s namespace`);
      const client = new SoccrClient(d.address);
      try {
        const v = await client.getVersion();
        assert.match(v.version, /^\d+\.\d+\.\d+/);
        assert.equal(v.features?.tcpRepair, true);
      } finally {
        client.close();
      }
    }
    assert.equal(await da.stop(), 0);
    assert.equal(await db.stop(), 0);
  });

  it('destroy removes every namespace, and a failed build leaves none', () => {
    const lan = Lan.create();
    assert.equal(lan.leftover().length, 4);
    assert.deepEqual(
      (['S', 'A', 'B', 'C'] as const).map((r) => lan.nsPath(r)),
      (['S', 'A', 'B', 'C'] as const).map((r) => `/run/netns/${lan.ns[r]}`),
    );
    lan.destroy();
    assert.deepEqual(lan.leftover(), []);
    lan.destroy(); // twice is harmless

    // The next LAN's client namespace is taken: the build fails half way, and removes what it made
    // (and only that).
    const m = /^(.*l)(\d+)s$/.exec(lan.ns.S);
    assert.ok(m, lan.ns.S);
    const blocker = `${m[1]}${Number(m[2]) + 1}c`;
    execFileSync('ip', ['netns', 'add', blocker]);
    try {
      assert.throws(() => Lan.create(), /File exists|exists/);
      assert.deepEqual(leftoverLanNamespaces(), [blocker]);
    } finally {
      execFileSync('ip', ['netns', 'del', blocker]);
    }
  });
});
