// soccrd as a real separate process, driven through the client library and through soccrctl: a
// connection checkpointed to a file, its owner killed, the file restored into a new owner in another
// namespace through the hand-over socket; leases, corrupt files, bad calls and SIGTERM.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient, describeError, readCheckpointFile } from '../client/client';
import { errorInfoOf, soccrErrorOf } from '../protocol/error-status';
import { DaemonProcess, cleanupDaemons, expectStatus } from '../lab/daemon';
import { Endpoint, killAllEndpoints } from '../lab/endpoint';
import { leftoverNamespaces, run } from '../lab/netns';
import { KiB, connectPair, destroyTopologies, receiverFor, setUp, sleep, socketPath, verifyStreams } from '../lab/scenario';
import { TcpState, stateName } from '../protocol/saved-state';

const SOCCRCTL = join(__dirname, '..', 'client', 'soccrctl.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function soccrctl(daemon: DaemonProcess, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SOCCRCTL, '--daemon', daemon.address, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether any TCP socket on `port` exists in namespace `ns`. */
function socketsOnPort(ns: string, port: number): string[] {
  return run('ip', ['netns', 'exec', ns, 'ss', '-tanH'])
    .split('\n')
    .filter((l) => l.includes(`:${port} `) || l.endsWith(`:${port}`));
}

describe('soccrd over gRPC', function () {
  this.timeout(120_000);
  let daemon: DaemonProcess;
  let client: SoccrClient;

  beforeEach(async () => {
    daemon = await DaemonProcess.start(['--lease-ms', '20000']);
    client = new SoccrClient(daemon.address);
  });

  afterEach(async function () {
    client.close();
    if (this.currentTest?.state === 'failed') process.stderr.write(`--- soccrd output ---\n${daemon.output.slice(-4000)}\n`);
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
  });

  after(() => {
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  it('client library: checkpoint to a file, owner killed, restored into another namespace and handed over', async () => {
    const version = await client.getVersion();
    assert.match(version.version, /^\d+\.\d+\.\d+/);
    assert.equal(version.features?.tcpRepair, true);
    assert.equal(version.streamFormat, 1);
    assert.deepEqual(version.streamFormatsRead, [1], 'the formats it reads, for a rolling upgrade');
    assert.equal(version.features?.pidfdGetfd, true);

    const p = await connectPair('ipv4', 2);
    const x = await setUp(p, TcpState.ESTABLISHED);
    const listed = await client.listSockets(p.owner.pid);
    assert.ok(
      listed.some((s) => s.fd === p.owner.connectedFd && stateName(s.state) === 'ESTABLISHED'),
      'the connection is listed',
    );

    const at = await p.owner.command('quiesce');
    const file = socketPath('ckpt').replace(/\.sock$/, '.soccr');
    const ck = await client.checkpointToFile(p.owner.pid, { fds: [p.owner.connectedFd] }, file);
    assert.equal(ck.connections, 1);
    assert.ok(ck.queueBytes > 0, 'queues travelled with the state');
    const sessionId = ck.header.sessionId;

    let info = await client.getSession(sessionId);
    assert.equal(info.state, SessionState.FROZEN);
    const renewed = await client.renewLease(sessionId);
    assert.ok(renewed.leaseExpiresUnixMs >= info.leaseExpiresUnixMs, 'RenewLease moves the expiry forward');
    assert.ok((await client.listSessions()).some((s) => s.sessionId === sessionId));

    // Commit at the source: the daemon lets go; the owner can die without a FIN or RST.
    info = await client.release(sessionId);
    assert.equal(info.state, SessionState.RELEASED);
    p.owner.kill();
    await p.owner.exited();

    const path = socketPath('deliver');
    const receiver = await receiverFor(p, 1, path, at);
    const restored = await client.restoreFromFile(file, { netns: p.topo.nsPath(p.topo.hosts[1]), deliverUnixPath: path, goLive: true });
    assert.equal(restored.state, SessionState.RESUMED);
    assert.equal(restored.connections[0]?.delivered, true);
    await receiver.waitEvent('connected', 10_000);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
  });

  it('--all finds a closed connection that still holds unread bytes (in no TCP table), and its bytes arrive exactly', async () => {
    const p = await connectPair('ipv4', 2);
    const x = await setUp(p, TcpState.CLOSE);
    assert.ok(!(await client.listSockets(p.owner.pid)).some((s) => s.fd === p.owner.connectedFd), 'a connection in CLOSE is not listed');
    const at = await p.owner.command('quiesce');
    const file = socketPath('closed').replace(/\.sock$/, '.soccr');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true, stopOwner: true }, file);
    assert.equal(ck.connections, 1, 'the closed connection was taken');
    assert.ok(ck.queueBytes > 0, 'with its unread bytes');
    await client.release(ck.header.sessionId);
    p.owner.kill();
    await p.owner.exited();
    const path = socketPath('deliver-closed');
    const receiver = await receiverFor(p, 1, path, at);
    const restored = await client.restoreFromFile(file, { netns: p.topo.nsPath(p.topo.hosts[1]), deliverUnixPath: path, goLive: true });
    assert.equal(restored.state, SessionState.RESUMED);
    await receiver.waitEvent('connected', 10_000);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
  });

  it('soccrctl: every command, and a held restore resumed by id', async () => {
    const p = await connectPair('ipv6', 2);
    const x = await setUp(p, TcpState.ESTABLISHED);
    const version = JSON.parse((await soccrctl(daemon, ['--json', 'version'])).stdout) as { daemon: string };
    assert.match(version.daemon, /^\d+\.\d+\.\d+/);
    const sockets = await soccrctl(daemon, ['--json', 'sockets', '--pid', String(p.owner.pid)]);
    assert.equal(sockets.code, 0, sockets.stderr);
    assert.match(sockets.stdout, /ESTABLISHED/);
    assert.equal((await soccrctl(daemon, ['sockets', '--pid', String(p.owner.pid)])).code, 0, 'table output');

    const at = await p.owner.command('quiesce');
    const file = socketPath('ckpt').replace(/\.sock$/, '.soccr');
    const ck = await soccrctl(daemon, ['checkpoint', '--pid', String(p.owner.pid), '--all', '--out', file]);
    assert.equal(ck.code, 0, ck.stderr);
    const sessionId = ck.stdout.trim();
    assert.match(sessionId, /^[0-9a-f-]{36}$/);

    const show = await soccrctl(daemon, ['--json', 'show', file]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /ESTABLISHED/);
    const sessions = await soccrctl(daemon, ['sessions']);
    assert.equal(sessions.code, 0, sessions.stderr);
    assert.ok(sessions.stdout.includes(sessionId.slice(0, 8)), 'the session is listed');
    assert.equal((await soccrctl(daemon, ['renew', sessionId])).code, 0);
    assert.equal((await soccrctl(daemon, ['--json', 'session', sessionId])).code, 0);
    const rel = await soccrctl(daemon, ['release', sessionId]);
    assert.equal(rel.code, 0, rel.stderr);
    p.owner.kill();
    await p.owner.exited();

    // Held: rebuilt and verified, not live until resumed with a delivery path.
    const held = await soccrctl(daemon, ['restore', '--in', file, '--netns', p.topo.nsPath(p.topo.hosts[1]), '--hold']);
    assert.equal(held.code, 0, held.stderr);
    const restoreId = held.stdout.trim();
    const heldInfo = await client.getSession(restoreId);
    assert.equal(heldInfo.state, SessionState.HELD);
    const path = socketPath('deliver');
    const receiver = await receiverFor(p, 1, path, at);
    const resumed = await soccrctl(daemon, ['resume', restoreId, '--deliver', `unix:${path}`]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await receiver.waitEvent('connected', 10_000);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
    // Ending a session twice is refused with a reason.
    const again = await soccrctl(daemon, ['abort', restoreId]);
    assert.equal(again.code, 73, 'FAILED_PRECONDITION: 64 + 9');
    assert.match(again.stderr, /^soccrctl: FAILED_PRECONDITION: /);
  });

  it('a session whose lease ends resumes its sockets, and the connection goes on at the source', async () => {
    const p = await connectPair('ipv4', 1);
    // A running owner would see its reads fail while frozen: it is stopped meanwhile, as migrate does.
    process.kill(p.owner.pid, 'SIGSTOP');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true, leaseMs: 1000 }, socketPath('ckpt'));
    const id = ck.header.sessionId;
    await sleep(1600);
    const info = await client.getSession(id);
    assert.equal(info.state, SessionState.EXPIRED, info.reason);
    process.kill(p.owner.pid, 'SIGCONT');
    await p.owner.command('read', { on: true });
    await p.peer.command('read', { on: true });
    const o0 = await p.owner.status();
    const q0 = await p.peer.status();
    await p.owner.command('write', { bytes: 200 * KiB });
    await p.peer.command('write', { bytes: 200 * KiB });
    const q1 = await p.peer.until((s) => s.received === o0.sent + 200 * KiB, 15_000, 'owner bytes after the lease ended');
    const o1 = await p.owner.until((s) => s.received === q0.sent + 200 * KiB, 15_000, 'peer bytes after the lease ended');
    assert.equal(q1.mismatchAt, -1);
    assert.equal(o1.mismatchAt, -1);
    assert.equal(q1.error, null);
    assert.equal(q1.eof, false);
  });

  it('a corrupted checkpoint file is refused with DATA_LOSS and nothing goes live', async () => {
    const p = await connectPair('ipv4', 2);
    await setUp(p, TcpState.ESTABLISHED);
    await p.owner.command('quiesce');
    const file = socketPath('ckpt');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true }, file);
    // Flip one byte inside the first queue chunk.
    let chunk: Buffer | undefined;
    for await (const f of readCheckpointFile(file)) {
      if (f.chunk && f.chunk.data.length >= 64) {
        chunk = Buffer.from(f.chunk.data);
        break;
      }
    }
    assert.ok(chunk, 'the file carries queue bytes');
    const bytes = readFileSync(file);
    const at = bytes.indexOf(chunk.subarray(0, 48));
    assert.ok(at > 0);
    bytes[at + 20] ^= 0x01;
    writeFileSync(file, bytes);

    const path = socketPath('deliver');
    const receiver = await receiverFor(p, 1, path, await p.owner.status());
    const err = await expectStatus(
      client.restoreFromFile(file, { netns: p.topo.nsPath(p.topo.hosts[1]), deliverUnixPath: path, goLive: true }),
      grpc.status.DATA_LOSS,
      'restore of a corrupted file',
    );
    assert.match(err.details, /checksum/);
    await sleep(200);
    assert.equal((await receiver.status()).connected, false, 'nothing was handed over');
    assert.deepEqual(socketsOnPort(p.topo.hosts[1], 5001), [], 'no socket left in the target namespace');
    const restores = (await client.listSessions()).filter((s) => s.sessionId !== ck.header.sessionId);
    assert.ok(
      restores.every((s) => s.state === SessionState.ABORTED),
      'the restore session ended without going live',
    );
    // The source is untouched by all this: abort it and the connection goes on.
    await client.abort(ck.header.sessionId);
  });

  it('bad calls get their status codes and the daemon keeps serving', async () => {
    const p = await connectPair('ipv4', 1);
    await p.owner.command('read', { on: true });
    const fds = await p.owner.extras();
    const gone = await Endpoint.start(p.topo.peer, { mode: 'adopt', unixPath: socketPath('gone'), sendSeed: 1, recvSeed: 1 });
    const gonePid = gone.pid;
    gone.kill();
    await gone.exited();

    const ck = (fd: number, pid = p.owner.pid): Promise<unknown> => client.checkpointToFile(pid, { fds: [fd] }, socketPath('bad'));
    await expectStatus(ck(3, gonePid), grpc.status.NOT_FOUND, 'no such pid');
    // The client rebuilds the daemon's typed error from the status and its trailers.
    const noFd = await expectStatus(ck(1000), grpc.status.NOT_FOUND, 'fd not open');
    const typed = soccrErrorOf(noFd);
    assert.ok(typed, describeError(noFd));
    assert.deepEqual([typed.kind, typed.errno, typed.grpcCode], ['NO_SUCH_FD', 'EBADF', grpc.status.NOT_FOUND]);
    assert.match(describeError(noFd), /^NOT_FOUND: pid \d+ has no fd 1000 .*EBADF/);
    const notSock = await expectStatus(ck(fds.file), grpc.status.INVALID_ARGUMENT, 'fd not a socket');
    assert.equal(notSock.metadata.get('soccr-kind')[0], 'NOT_A_SOCKET');
    await expectStatus(ck(fds.udp), grpc.status.INVALID_ARGUMENT, 'UDP socket');
    await expectStatus(ck(fds.listening), grpc.status.FAILED_PRECONDITION, 'listening socket');
    await expectStatus(client.listSockets(gonePid), grpc.status.NOT_FOUND, 'sockets of no such pid');
    // The same, as any gRPC library reads it: google.rpc.Status details holding an ErrorInfo.
    assert.deepEqual(errorInfoOf(noFd), { reason: 'NO_SUCH_FD', domain: 'soccrd.io', metadata: { errno: 'EBADF' } });
    assert.equal(errorInfoOf(notSock)?.reason, 'NOT_A_SOCKET');
    const noSession = await expectStatus(client.resume('no-such-session'), grpc.status.NOT_FOUND, 'unknown session');
    assert.deepEqual(errorInfoOf(noSession), { reason: 'NO_SUCH_SESSION', domain: 'soccrd.io', metadata: { session: 'no-such-session' } });
    await expectStatus(client.release('no-such-session'), grpc.status.NOT_FOUND, 'unknown session');
    await expectStatus(client.checkpointToFile(p.owner.pid, {}, socketPath('bad')), grpc.status.INVALID_ARGUMENT, 'no fds');
    const cli = await soccrctl(daemon, ['checkpoint', '--pid', String(gonePid), '--all', '--out', socketPath('bad')]);
    assert.equal(cli.code, 69, 'NOT_FOUND: 64 + 5');
    assert.match(cli.stderr.trim(), /^soccrctl: NOT_FOUND: .+$/);

    // Still serving; no session was left behind; the owner's connection still carries traffic.
    assert.ok((await client.getVersion()).version);
    assert.deepEqual(await client.listSessions(), []);
    const o0 = await p.owner.status();
    await p.owner.command('write', { bytes: 64 * KiB });
    await p.peer.command('read', { on: true });
    await p.peer.until((s) => s.received === o0.sent + 64 * KiB, 10_000, 'traffic after the refusals');
  });

  it('SIGTERM with a frozen session resumes it before exit', async () => {
    const p = await connectPair('ipv4', 1);
    process.kill(p.owner.pid, 'SIGSTOP');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ckpt'));
    assert.equal((await client.getSession(ck.header.sessionId)).state, SessionState.FROZEN);
    client.close();
    assert.equal(await daemon.stop(), 0, 'clean exit');
    assert.match(daemon.output, /daemon stopping: resumed at the source/);
    process.kill(p.owner.pid, 'SIGCONT');
    await p.owner.command('read', { on: true });
    await p.peer.command('read', { on: true });
    const o0 = await p.owner.status();
    const q0 = await p.peer.status();
    await p.owner.command('write', { bytes: 100 * KiB });
    await p.peer.command('write', { bytes: 100 * KiB });
    const q1 = await p.peer.until((s) => s.received === o0.sent + 100 * KiB, 15_000, 'traffic after SIGTERM');
    await p.owner.until((s) => s.received === q0.sent + 100 * KiB, 15_000, 'traffic after SIGTERM');
    assert.equal(q1.error, null);
  });
});
