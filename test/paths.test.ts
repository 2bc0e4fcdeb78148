// Paths a caller names, against a real daemon: a restore's network namespace and a hand-over's socket.
// The daemon runs as root, so a path must not reach more than the caller may: a namespace path is opened
// once (never through a symbolic link in its last component, never blocking on a FIFO) and that very
// namespace is what the policy checks and the restore uses; a hand-over socket must lie under the
// allowed directories, be the socket file itself, and its receiver must run as an allowed uid, checked
// before anything is sent. Every refusal leaves the held session as it was, for a correct hand-over.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons, expectStatus } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { leftoverNamespaces, run, tcpSockets } from '../lab/netns';
import { Pair, connectPair, destroyTopologies, receiverFor, setUp, socketPath, verifyStreams } from '../lab/scenario';
import { TcpState } from '../protocol/saved-state';
import { NOBODY } from './support/other-user';

/** soccrd's lock tables in namespace `ns` (none once nothing is locked there). */
function soccrdTables(ns: string): string[] {
  return run('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'])
    .split('\n')
    .filter((l) => l.includes('soccrd_'));
}

/** A Unix listener that counts what reaches it: connections and bytes (fds travel with bytes). */
class CountingListener {
  connections = 0;
  bytes = 0;
  private constructor(private readonly server: net.Server) {}

  static async at(path: string): Promise<CountingListener> {
    const server = net.createServer();
    const l = new CountingListener(server);
    server.on('connection', (s) => {
      l.connections++;
      s.on('data', (d) => (l.bytes += d.length));
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return l;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A Unix listener in a process of its own (node -e, nothing to read from the checkout): prints one JSON
 * line per connection once it closes, with the bytes it carried. `as`: run as uid/gid 65534; or in a
 * mount namespace of its own where `tmpfsAt` (a directory) is a fresh tmpfs, the socket in it.
 */
function childListener(path: string, how: { as: 'nobody' } | { tmpfsAt: string }): Promise<{ child: ChildProcess; closed: () => Promise<{ bytes: number }> }> {
  const script = `
    const net = require('net');
    net.createServer((s) => {
      let bytes = 0;
      s.on('data', (d) => (bytes += d.length));
      s.on('error', () => {});
      s.on('close', () => process.stdout.write(JSON.stringify({ bytes }) + '\\n'));
    }).listen(${JSON.stringify(path)}, () => process.stdout.write('listening\\n'));`;
  const child =
    'as' in how
      ? spawn(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(
          'unshare',
          ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none "$1" && exec "$2" -e "$3"', 'sh', how.tmpfsAt, process.execPath, script],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
  const lines: string[] = [];
  let buf = '';
  let wake: (() => void) | undefined;
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    wake?.();
  });
  const next = async (what: string): Promise<string> => {
    const deadline = Date.now() + 10_000;
    while (!lines.length) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the listener at ${path}: no ${what} (exit ${String(child.exitCode)})`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
    return lines.shift() as string;
  };
  return next('listening line').then((first) => {
    assert.equal(first, 'listening');
    return { child, closed: async () => JSON.parse(await next('connection report')) as { bytes: number } };
  });
}

/** Kills a child this test started, by its pid, unless it has ended already. */
function stopChild(c: ChildProcess): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(c.pid, 'SIGKILL');
  } catch {
    /* ended meanwhile */
  }
}

describe('paths a caller names: namespaces and hand-over sockets', function () {
  this.timeout(120_000);
  let client: SoccrClient | undefined;
  let base = '';
  const mounts: string[] = [];
  const children: ChildProcess[] = [];
  const listeners: CountingListener[] = [];

  beforeEach(() => {
    // Searchable by uid 65534 (its listener's directory is inside): the test's own tree, removed after.
    base = mkdtempSync('/tmp/soccrt-paths-');
    chmodSync(base, 0o755);
  });

  afterEach(async function () {
    client?.close();
    client = undefined;
    for (const c of children.splice(0)) stopChild(c);
    await Promise.all(listeners.splice(0).map((l) => l.close()));
    for (const m of mounts.splice(0)) {
      try {
        execFileSync('umount', [m], { stdio: 'ignore' });
      } catch {
        // Still held open by a process being torn down: detached now, gone with its last user.
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      }
    }
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
    rmSync(base, { recursive: true, force: true });
  });

  after(() => assert.deepEqual(leftoverNamespaces(), []));

  /** A frozen source session of `p` checkpointed to a file. */
  async function checkpoint(c: SoccrClient, p: Pair): Promise<{ file: string; id: string }> {
    const file = socketPath('ck').replace(/\.sock$/, '.soccr');
    const ck = await c.checkpointToFile(p.owner.pid, { all: true }, file);
    return { file, id: ck.header.sessionId };
  }

  it('a restore target named by a symbolic link is refused (INVALID_ARGUMENT), also one to an allowed namespace; nothing is rebuilt or locked', async () => {
    const p = await connectPair('ipv4', 3);
    const [, allowed, other] = p.topo.hosts;
    const d = await DaemonProcess.start(['--restore-netns', p.topo.nsPath(allowed)]);
    client = new SoccrClient(d.address);
    await p.owner.command('quiesce');
    const ck = await checkpoint(client, p);
    // A link the policy would pass by its target, and one to a namespace it refuses: a caller who can
    // swap one for the other after the check must not get a restore into the second.
    for (const [name, target] of [
      ['to-allowed', allowed],
      ['to-other', other],
    ]) {
      const link = join(base, name);
      symlinkSync(p.topo.nsPath(target), link);
      const err = await expectStatus(client.restoreFromFile(ck.file, { netns: link, goLive: false }), grpc.status.INVALID_ARGUMENT, `netns ${name}`);
      assert.match(err.details, /is a symbolic link/);
      assert.deepEqual(soccrdTables(target), [], `nothing locked in ${target}`);
    }
    assert.deepEqual(
      (await client.listSessions()).map((s) => s.sessionId),
      [ck.id],
      'no restore session',
    );
    // The namespace file itself is taken (and /var/run, itself a link to /run, only above the last component).
    const held = await client.restoreFromFile(ck.file, { netns: `/var/run/netns/${allowed}`, goLive: false });
    assert.equal(held.state, SessionState.HELD);
    await client.abort(held.sessionId);
    assert.equal((await client.resume(ck.id)).state, SessionState.RESUMED);
  });

  it('a FIFO as the restore target is refused at once; the daemon keeps serving and a frozen session is untouched', async () => {
    const p = await connectPair('ipv4', 2);
    const d = await DaemonProcess.start([]);
    client = new SoccrClient(d.address);
    const ck = await checkpoint(client, p);
    const fifo = join(base, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Nobody ever opens the FIFO's other end: a blocking open(2) would never return (and freeze the
    // daemon's event loop, and with it every session). Bounded here, so a hang fails the test.
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the Restore naming a FIFO got no answer in 30 s: the daemon blocks')), 30_000);
    });
    const err = await expectStatus(
      Promise.race([client.restoreFromFile(ck.file, { netns: fifo, goLive: false }), hang]).finally(() => clearTimeout(timer)),
      grpc.status.INVALID_ARGUMENT,
      'a FIFO',
    );
    assert.match(err.details, /FIFO|not a namespace/);
    // Still serving, the frozen source as it was.
    assert.ok((await client.getVersion()).version);
    assert.equal((await client.getSession(ck.id)).state, SessionState.FROZEN);
    assert.deepEqual(
      (await client.listSessions()).map((s) => s.sessionId),
      [ck.id],
    );
    assert.equal((await client.resume(ck.id)).state, SessionState.RESUMED);
  });

  it('a path whose directory is swapped meanwhile between an allowed namespace, a refused one and a FIFO: each restore lands in the allowed one or is refused at once, none blocks', async () => {
    const p = await connectPair('ipv4', 3);
    const [, allowed, refused] = p.topo.hosts;
    const d = await DaemonProcess.start(['--restore-netns', p.topo.nsPath(allowed)]);
    client = new SoccrClient(d.address);
    await p.owner.command('quiesce');
    const ck = await checkpoint(client, p);
    // dirA/ns and dirB/ns: the two namespaces bind-mounted; dirC/ns: a FIFO nobody opens. The path named
    // is cur/ns, `cur` a link a loop points at each directory in turn (the last component is no link).
    for (const [dir, ns] of [
      ['A', allowed],
      ['B', refused],
    ]) {
      mkdirSync(join(base, dir));
      writeFileSync(join(base, dir, 'ns'), '');
      execFileSync('mount', ['--bind', p.topo.nsPath(ns), join(base, dir, 'ns')]);
      mounts.push(join(base, dir, 'ns'));
    }
    mkdirSync(join(base, 'C'));
    execFileSync('mkfifo', [join(base, 'C', 'ns')]);
    symlinkSync(join(base, 'A'), join(base, 'cur'));
    const flip = 'for i in $(seq 1 100000); do for d in A B C; do ln -sfn "$1/$d" "$1/cur.new" && mv -T "$1/cur.new" "$1/cur"; done; done';
    const swapper = spawn('bash', ['-c', flip, 'flip', base], { stdio: 'ignore' });
    children.push(swapper);
    const outcomes = new Map<string, number>();
    try {
      for (let i = 0; i < 40; i++) {
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`restore ${i} got no answer in 30 s: the daemon blocks`)), 30_000);
        });
        const outcome = await Promise.race([client.restoreFromFile(ck.file, { netns: join(base, 'cur', 'ns'), goLive: false }), hang])
          .then(
            (s) => s,
            (err: unknown) => err as grpc.ServiceError,
          )
          .finally(() => clearTimeout(timer));
        if ('sessionId' in outcome) {
          assert.equal(outcome.state, SessionState.HELD);
          assert.deepEqual(
            tcpSockets(refused).filter((l) => l.includes(':5001')),
            [],
            'nothing rebuilt in the refused namespace',
          );
          assert.ok(
            tcpSockets(allowed).some((l) => l.includes(':5001')),
            'rebuilt in the allowed namespace',
          );
          await client.abort(outcome.sessionId);
          outcomes.set('HELD', (outcomes.get('HELD') ?? 0) + 1);
        } else {
          assert.ok(outcome.code === grpc.status.PERMISSION_DENIED || outcome.code === grpc.status.INVALID_ARGUMENT, `restore ${i}: ${outcome.details}`);
          if (outcome.code === grpc.status.INVALID_ARGUMENT) assert.match(outcome.details, /FIFO/);
          outcomes.set(grpc.status[outcome.code], (outcomes.get(grpc.status[outcome.code]) ?? 0) + 1);
        }
        assert.deepEqual(tcpSockets(refused), [], 'the refused namespace holds no socket');
      }
    } finally {
      stopChild(swapper);
    }
    process.stdout.write(`      outcomes of 40 restores: ${JSON.stringify(Object.fromEntries(outcomes))}\n`);
    assert.deepEqual(soccrdTables(refused), [], 'nothing ever locked in the refused namespace');
    assert.deepEqual(
      (await client.listSessions()).filter((s) => s.sessionId !== ck.id && s.state === SessionState.HELD),
      [],
    );
    assert.equal((await client.resume(ck.id)).state, SessionState.RESUMED);
  });

  it('a namespace bind-mounted at a path of its own is restored into, allowed by --restore-netns by identity, and goes live', async () => {
    const p = await connectPair('ipv4', 2);
    const target = p.topo.hosts[1];
    const nsFile = join(base, 'ns-target');
    writeFileSync(nsFile, '');
    execFileSync('mount', ['--bind', p.topo.nsPath(target), nsFile]);
    mounts.push(nsFile);
    const handover = join(base, 'allowed');
    mkdirSync(handover);
    const d = await DaemonProcess.start(['--restore-netns', p.topo.nsPath(target), '--handover-prefix', handover]);
    client = new SoccrClient(d.address);
    const x = await setUp(p, TcpState.ESTABLISHED);
    const at = await p.owner.command('quiesce');
    const ck = await checkpoint(client, p);
    await client.release(ck.id);
    p.owner.kill();
    await p.owner.exited();
    const path = join(handover, 'new-owner.sock');
    const receiver = await receiverFor(p, 1, path, at);
    const restored = await client.restoreFromFile(ck.file, { netns: nsFile, deliverUnixPath: path, goLive: true });
    assert.equal(restored.state, SessionState.RESUMED);
    assert.equal(restored.netns, nsFile);
    await receiver.waitEvent('connected', 10_000);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
  });

  it('hand-over: outside the prefixes PERMISSION_DENIED, a symbolic link, /proc or a directory in another mount namespace INVALID_ARGUMENT, a receiver of another uid PERMISSION_DENIED after connect; nothing sent, the session stays held and goes live to the right receiver', async () => {
    const p = await connectPair('ipv4', 2);
    const allowed = join(base, 'allowed');
    const outside = join(base, 'outside');
    const nobodyDir = join(allowed, 'nobody');
    for (const dir of [allowed, outside, nobodyDir]) mkdirSync(dir, { mode: 0o755 });
    chownSync(nobodyDir, NOBODY, NOBODY);
    const d = await DaemonProcess.start(['--handover-prefix', allowed, '--receiver-uid', '0']);
    client = new SoccrClient(d.address);
    const x = await setUp(p, TcpState.ESTABLISHED);
    const at = await p.owner.command('quiesce');
    const ck = await checkpoint(client, p);
    await client.release(ck.id);
    p.owner.kill();
    await p.owner.exited();
    const ns = p.topo.nsPath(p.topo.hosts[1]);

    // A Restore that would go live to a path outside the prefixes is refused before anything is rebuilt.
    const foreign = await CountingListener.at(join(outside, 'r.sock'));
    listeners.push(foreign);
    await expectStatus(
      client.restoreFromFile(ck.file, { netns: ns, deliverUnixPath: join(outside, 'r.sock'), goLive: true }),
      grpc.status.PERMISSION_DENIED,
      'go-live outside the prefixes',
    );
    assert.deepEqual(
      (await client.listSessions()).filter((s) => s.sessionId !== ck.id),
      [],
      'nothing was rebuilt',
    );

    const held = await client.restoreFromFile(ck.file, { netns: ns, goLive: false, leaseMs: 60_000 });
    assert.equal(held.state, SessionState.HELD);
    const stillHeld = async (what: string): Promise<void> => {
      const s = await client?.getSession(held.sessionId);
      assert.equal(s?.state, SessionState.HELD, `${what}: the session is still held`);
      assert.equal(s?.connections[0]?.delivered, false, `${what}: nothing delivered`);
    };

    let err = await expectStatus(client.resume(held.sessionId, join(outside, 'r.sock')), grpc.status.PERMISSION_DENIED, 'outside the prefixes');
    assert.match(err.details, /does not allow hand-over sockets at/);
    await stillHeld('outside');

    // A link inside the allowed directory to the socket outside it: refused, not followed.
    const link = join(allowed, 'link.sock');
    symlinkSync(join(outside, 'r.sock'), link);
    err = await expectStatus(client.resume(held.sessionId, link), grpc.status.INVALID_ARGUMENT, 'a symbolic link');
    assert.match(err.details, /is a symbolic link/);
    await stillHeld('link');

    // Through another process's root: never.
    err = await expectStatus(client.resume(held.sessionId, `/proc/${process.pid}/root${allowed}/x.sock`), grpc.status.INVALID_ARGUMENT, '/proc');
    assert.match(err.details, /\/proc/);
    await stillHeld('/proc');
    assert.deepEqual([foreign.connections, foreign.bytes], [0, 0], 'nothing reached the socket outside the prefixes');

    // Under the prefix, but the receiver runs as uid 65534 where only root's are allowed: refused after
    // connect (SO_PEERCRED), before a byte or a descriptor is sent.
    // A directory behind a link into another mount namespace (/proc/PID/root): its path, as procfs shows
    // it, names another directory here (one under the prefix): refused, never connected.
    const inner = join(allowed, 'inner');
    mkdirSync(inner);
    const foreignNs = await childListener(join(inner, 'r.sock'), { tmpfsAt: inner });
    children.push(foreignNs.child);
    symlinkSync(`/proc/${String(foreignNs.child.pid)}/root${inner}`, join(allowed, 'elsewhere'));
    err = await expectStatus(
      client.resume(held.sessionId, join(allowed, 'elsewhere', 'r.sock')),
      grpc.status.INVALID_ARGUMENT,
      'a directory in another mount namespace',
    );
    assert.match(err.details, /not reachable by its own path/);
    await stillHeld('another mount namespace');

    const nobody = await childListener(join(nobodyDir, 'r.sock'), { as: 'nobody' });
    children.push(nobody.child);
    err = await expectStatus(client.resume(held.sessionId, join(nobodyDir, 'r.sock')), grpc.status.PERMISSION_DENIED, 'a receiver of uid 65534');
    assert.match(err.details, new RegExp(`runs as uid ${NOBODY}`));
    assert.deepEqual(await nobody.closed(), { bytes: 0 }, 'the refused receiver got nothing');
    await stillHeld('uid 65534');

    // And the right receiver gets it.
    const path = join(allowed, 'new-owner.sock');
    const receiver = await receiverFor(p, 1, path, at);
    const live = await client.resume(held.sessionId, path);
    assert.equal(live.state, SessionState.RESUMED);
    await receiver.waitEvent('connected', 10_000);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
  });
});
