// Connections repair mode cannot carry whole are refused with CANNOT_CARRY (FAILED_PRECONDITION) by a
// real daemon, with a message that says why, and are left working: Multipath TCP (by fd and under
// --all, where a TCP listing does not even show it), TCP-MD5 keys, and kernel TLS where this kernel can
// make it (skipped, saying so, where it cannot). TCP-AO is checked only on kernels that have it
// (CONFIG_TCP_AO; not this test machine's), so no test here. The owner's other connection keeps its
// traffic and no session is left behind.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons, expectStatus } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { leftoverNamespaces } from '../lab/netns';
import { KiB, Pair, connectPair, destroyTopologies, socketPath } from '../lab/scenario';

describe('sockets repair mode cannot carry are refused, not broken', function () {
  this.timeout(120_000);
  let daemon: DaemonProcess;
  let client: SoccrClient;
  let p: Pair;
  let u: { fds: Record<string, number>; missing: Record<string, string> };
  let extras: Record<string, number>;

  before(async () => {
    daemon = await DaemonProcess.start(['--lease-ms', '20000']);
    client = new SoccrClient(daemon.address);
    p = await connectPair('ipv4', 1);
    await p.owner.command('read', { on: true });
    await p.peer.command('read', { on: true });
    u = await p.owner.uncarriable();
    extras = await p.owner.extras(); // among them a TCP listener, which --all leaves and must say so
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`--- soccrd output ---\n${daemon.output.slice(-6000)}\n`);
  });

  after(async function () {
    client.close();
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  /** A refused checkpoint: FAILED_PRECONDITION with kind CANNOT_CARRY and a message matching `why`; no session left. */
  async function refused(opts: { fds?: number[]; all?: boolean }, why: RegExp, what: string): Promise<void> {
    // The owner is stopped while anything is frozen (a running one gets EINVAL from its calls meanwhile,
    // and the test's owner gives up at its first error).
    const err = await expectStatus(
      client.checkpointToFile(p.owner.pid, { ...opts, stopOwner: true }, socketPath('refused')),
      grpc.status.FAILED_PRECONDITION,
      what,
    );
    assert.equal(err.metadata.get('soccr-kind')[0], 'CANNOT_CARRY', `${what}: ${err.details}`);
    assert.match(err.details, why, what);
    assert.deepEqual(
      (await client.listSessions()).filter((x) => x.state === SessionState.FROZEN),
      [],
      `${what}: nothing left frozen`,
    );
  }

  /** The owner's ordinary connection still carries traffic both ways. */
  async function ordinaryConnectionWorks(): Promise<void> {
    const o0 = await p.owner.status();
    const q0 = await p.peer.status();
    await p.owner.command('write', { bytes: 64 * KiB });
    await p.peer.command('write', { bytes: 64 * KiB });
    await p.peer.until((s) => s.received === o0.sent + 64 * KiB, 10_000, 'owner -> peer after the refusal');
    const o1 = await p.owner.until((s) => s.received === q0.sent + 64 * KiB, 10_000, 'peer -> owner after the refusal');
    assert.equal(o1.mismatchAt, -1);
  }

  it('Multipath TCP: refused by fd and under --all, with the hint for Go servers; the connection still works', async function () {
    if (u.fds.mptcp === undefined) {
      console.log(`      (skipped: this kernel makes no MPTCP socket: ${u.missing.mptcp})`);
      this.skip();
    }
    await refused({ fds: [u.fds.mptcp] }, /Multipath TCP.*GODEBUG=multipathtcp=0/, 'MPTCP connection by fd');
    // A TCP listing does not show MPTCP sockets: "all" must not pass over them in silence.
    await refused({ all: true }, new RegExp(`connections on fd .*\\b${u.fds.mptcp}\\b.*Multipath TCP`), 'MPTCP connections under --all');
    assert.ok(await p.owner.roundtrip(u.fds.mptcp, u.fds.mptcpPeer), 'the MPTCP connection still carries bytes');
    assert.ok(await p.owner.roundtrip(u.fds.mptcpPeer, u.fds.mptcp), 'both ways');
    await ordinaryConnectionWorks();
  });

  it('TCP-MD5 keys: refused (found by socket diagnostics right after the freeze) and thawed; the connection still works', async function () {
    if (u.fds.md5 === undefined) {
      console.log(`      (skipped: this kernel makes no TCP-MD5 socket: ${u.missing.md5})`);
      this.skip();
    }
    // Under --all only the MPTCP refusal would show: take the MD5 connection by fd, with the ordinary one.
    const sockets = await client.listSockets(p.owner.pid);
    assert.ok(
      sockets.some((s) => s.fd === u.fds.md5),
      'the MD5 connection is a TCP connection the daemon lists',
    );
    await refused({ fds: [p.owner.connectedFd, u.fds.md5] }, /TCP-MD5/, 'TCP-MD5 connection');
    assert.ok(await p.owner.roundtrip(u.fds.md5, u.fds.md5Peer), 'the MD5 connection still carries bytes (thawed, keys kept)');
    assert.ok(await p.owner.roundtrip(u.fds.md5Peer, u.fds.md5), 'both ways');
    await ordinaryConnectionWorks();
  });

  it('kernel TLS (TCP_ULP): refused before anything freezes', async function () {
    if (u.fds.ulp === undefined) {
      console.log(`      (skipped: this kernel cannot install the "tls" upper-layer protocol, CONFIG_TLS: ${u.missing.ulp})`);
      this.skip();
    }
    await refused({ fds: [u.fds.ulp] }, /kernel TLS/, 'kTLS connection');
    assert.ok(await p.owner.roundtrip(u.fds.ulp, u.fds.ulpPeer), 'the kTLS connection still carries bytes');
    await ordinaryConnectionWorks();
  });

  it('allow_partial: what can move is checkpointed, every socket left behind is listed with its kind and reason, and keeps working', async function () {
    if (u.fds.mptcp === undefined || u.fds.md5 === undefined) this.skip();
    const file = socketPath('partial');
    const kindsOf = (skipped: ReadonlyArray<{ fd: number; kind: string; reason: string }>): Record<number, string> =>
      Object.fromEntries(skipped.map((x) => [x.fd, x.kind]));
    // --all: the listener, both ends of the MPTCP and of the MD5 connection are left, the ordinary one moves.
    const all = await client.checkpointToFile(p.owner.pid, { all: true, allowPartial: true, stopOwner: true }, file);
    assert.equal(all.connections, 1, 'only the ordinary connection');
    assert.deepEqual(kindsOf(all.header.skipped), {
      [extras.listening]: 'LISTENING',
      [u.fds.mptcp]: 'CANNOT_CARRY',
      [u.fds.mptcpPeer]: 'CANNOT_CARRY',
      [u.fds.md5]: 'CANNOT_CARRY',
      [u.fds.md5Peer]: 'CANNOT_CARRY',
    });
    for (const x of all.header.skipped) assert.ok(x.reason.length > 0, `fd ${x.fd} says why`);
    assert.match(all.header.skipped.find((x) => x.fd === u.fds.md5)?.reason ?? '', /TCP-MD5/);
    await client.abort(all.header.sessionId);
    // Named fds: an MPTCP one makes the batched take fail, and each fd is then taken on its own.
    const named = await client.checkpointToFile(p.owner.pid, { fds: [p.owner.connectedFd, u.fds.mptcp, u.fds.md5], allowPartial: true, stopOwner: true }, file);
    assert.equal(named.connections, 1);
    assert.deepEqual(kindsOf(named.header.skipped), { [u.fds.mptcp]: 'CANNOT_CARRY', [u.fds.md5]: 'CANNOT_CARRY' });
    await client.abort(named.header.sessionId);
    assert.deepEqual(
      (await client.listSessions()).filter((x) => x.state === SessionState.FROZEN),
      [],
      'nothing frozen',
    );
    assert.ok(await p.owner.roundtrip(u.fds.mptcp, u.fds.mptcpPeer), 'the MPTCP connection still carries bytes');
    assert.ok(await p.owner.roundtrip(u.fds.md5, u.fds.md5Peer), 'the MD5 connection still carries bytes');
    await ordinaryConnectionWorks();
  });
});
