// The repair engine against the real kernel: a connection owned by a separate process is checkpointed
// through pidfd_getfd, its owner killed while it is frozen, and the connection rebuilt in another
// network namespace and handed to a new owner process, in every supported state and address family.
// All of it twice: with the kernel calls batched (native/soccr_batch.c) and one FFI call each (the
// fallback); each checkpoint is also read by the other path, which must save the very same state.
import { strict as assert } from 'node:assert';
import * as N from '../daemon/kernel/native';
import { ProcessHandle, listTcpSockets, findOwners, takeTcpSocket } from '../daemon/repair/acquire';
import {
  FrozenSocket,
  RestoredSocket,
  capture,
  finishRestoredAll,
  pause,
  restore,
  resume,
  resumeRestored,
  save,
  silentClose,
  validateSaved,
} from '../daemon/repair/engine';
import { savedConnection } from './support/states';
import { NetnsHandle } from '../daemon/kernel/netns';
import { diagnose } from '../daemon/kernel/sockdiag';
import { SoccrError } from '../protocol/errors';
import { deliver } from '../daemon/custody/delivery';
import { SavedConnection, TcpState, stateName } from '../protocol/saved-state';
import { Endpoint, killAllEndpoints } from '../lab/endpoint';
import { PEER_V4, PEER_V6, Topology, leftoverNamespaces, run } from '../lab/netns';
import {
  Flavor,
  KiB,
  MiB,
  OWNER_TO_PEER,
  PEER_TO_OWNER,
  USER_OPTIONS,
  connectPair,
  destroyTopologies,
  setUp,
  sleep,
  socketPath,
  verifyStreams,
} from '../lab/scenario';
import type { EndpointStatus } from '../lab/fixtures/endpoint';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { captureTcp, stopCaptures } from '../lab/capture';
import { SoccrClient } from '../client';

/** The path the process started with (the library loaded, unless SOCCRD_NATIVE_BATCH=0). */
const DEFAULT_NATIVE = N.batchPath().native;

/** `fn` with the kernel calls on the other path. */
function onOtherPath<T>(fn: () => T): T {
  const native = N.batchPath().native;
  N.useNativeBatch(!native);
  try {
    return fn();
  } finally {
    N.useNativeBatch(native);
  }
}

/**
 * Checkpoints the owner's connection through pidfd_getfd and leaves it frozen. It is saved twice: call
 * by call, and with what socket diagnostics report (as the daemon saves); both must agree.
 */
function checkpoint(owner: Endpoint): { frozen: FrozenSocket; saved: SavedConnection } {
  const h = ProcessHandle.open(owner.pid);
  const ns = NetnsHandle.open(`/proc/${owner.pid}/ns/net`);
  try {
    const frozen = pause(h.takeTcpSocket(owner.connectedFd));
    const saved = save(frozen);
    if (N.batchPath().native || DEFAULT_NATIVE) {
      const other = onOtherPath(() => save(frozen));
      assert.deepEqual({ ...other, timestamp: 0 }, { ...saved, timestamp: 0 }, 'saved by the other kernel-call path');
    }
    const [diag] = diagnose(ns, [{ local: saved.local, remote: saved.remote }]);
    // A connection in CLOSE is no longer hashed: the kernel does not find it by its addresses; nor one
    // bound to an interface, by a lookup that names none.
    assert.equal(diag === undefined, saved.state === TcpState.CLOSE || saved.options.bindDevice !== '', 'socket diagnostics found the connection');
    if (diag) {
      const viaDiag = capture(frozen, Infinity, diag).state;
      assert.deepEqual({ ...viaDiag, timestamp: 0 }, { ...saved, timestamp: 0 }, 'saved with socket diagnostics');
    }
    return { frozen, saved };
  } finally {
    ns.close();
    h.close();
  }
}

/** The restored socket reads back what was saved, except what time itself moves. */
function assertReadsBack(r: RestoredSocket, saved: SavedConnection): void {
  const back = save(r);
  assert.equal(stateName(back.state), stateName(saved.state), 'state');
  assert.equal(back.inqSeq, saved.inqSeq, 'rcv_nxt');
  assert.equal(back.outqSeq, saved.outqSeq, 'write_seq');
  assert.equal(back.inqLen, saved.inqLen, 'receive queue length');
  assert.equal(back.outqLen, saved.outqLen, 'send queue length');
  assert.equal(back.unsentLen, saved.unsentLen, 'unsent length');
  assert.ok(back.recvQueue.equals(saved.recvQueue), 'receive queue bytes');
  assert.ok(back.sendQueue.equals(saved.sendQueue), 'send queue bytes');
  assert.equal(back.mssClamp, saved.mssClamp, 'MSS clamp');
  assert.equal(back.tcpOptions, saved.tcpOptions, 'negotiated options');
  assert.equal(back.sndWscale, saved.sndWscale, 'send window scale');
  assert.equal(back.rcvWscale, saved.rcvWscale, 'receive window scale');
  assert.deepEqual(back.local, saved.local, 'local address');
  assert.deepEqual(back.remote, saved.remote, 'remote address');
  // Buffer sizes go back through setsockopt, which doubles its argument: an odd size (left by the
  // kernel's autotuning) comes back one byte larger. An autotuned size may also have been raised to
  // make room for the queues; autotuning then goes on from there.
  const { sndBuf, rcvBuf, ...rest } = back.options;
  const { sndBuf: sndSaved, rcvBuf: rcvSaved, ...restSaved } = saved.options;
  assert.deepEqual(rest, restSaved, 'user socket options');
  const sizeOk = (got: number, want: number, locked: boolean): boolean => got - want === 0 || got - want === 1 || (!locked && got > want);
  assert.ok(sizeOk(sndBuf, sndSaved, (saved.options.bufLock & 1) !== 0), `SO_SNDBUF ${sndBuf} for ${sndSaved}`);
  assert.ok(sizeOk(rcvBuf, rcvSaved, (saved.options.bufLock & 2) !== 0), `SO_RCVBUF ${rcvBuf} for ${rcvSaved}`);
  // The timestamp clock runs on (milliseconds) from the saved value.
  const drift = (back.timestamp - saved.timestamp) >>> 0;
  assert.ok(drift < 60_000, `timestamp moved by ${drift}`);
  if (saved.window && back.window && saved.state === TcpState.ESTABLISHED) {
    // Half-closed states acknowledge the re-injected FIN, which moves the window: compare ESTABLISHED only.
    assert.deepEqual(back.window, saved.window, 'repair window');
  }
}

/** The owner dies while its socket is frozen; our copy is the last one and closes silently. */
async function killOwner(owner: Endpoint, frozen: FrozenSocket): Promise<void> {
  owner.kill();
  await owner.exited();
  silentClose(frozen);
}

/**
 * Rebuilds the saved connection in the namespace of `host`, in repair mode, with its go-live steps
 * written (as the daemon does once the new owner holds it), and checks it reads back.
 */
function restoreIn(topo: Topology, host: number, saved: SavedConnection): RestoredSocket {
  const r = restore(saved, { netns: topo.nsPath(topo.hosts[host]) });
  const [err] = finishRestoredAll([r]);
  if (err) throw err;
  assertReadsBack(r, saved);
  return r;
}

/**
 * Starts a new owner in `host` that adopts the connection where the old owner left it: the rebuilt
 * socket is handed over (docs/handover.md) and goes live once the new owner holds it.
 */
async function adopt(topo: Topology, host: number, r: RestoredSocket, saved: SavedConnection, ownerAt: EndpointStatus): Promise<Endpoint> {
  const path = socketPath('adopt');
  const receiver = await Endpoint.start(topo.hosts[host], {
    mode: 'adopt',
    unixPath: path,
    sendSeed: OWNER_TO_PEER,
    recvSeed: PEER_TO_OWNER,
    sendOffset: ownerAt.sent,
    recvOffset: ownerAt.received,
    reading: true,
  });
  const meta = { id: 'test', session: 'test', index: 0, local: saved.local, remote: saved.remote, state: stateName(saved.state) };
  await deliver(path, [{ fd: r.fd, meta }], () => resumeRestored(r));
  N.close(r.fd);
  await receiver.waitEvent('connected', 10_000);
  return receiver;
}

async function migrate(flavor: Flavor, state: TcpState): Promise<void> {
  const p = await connectPair(flavor, 2);
  const x = await setUp(p, state);
  const ownerAt = await p.owner.command('quiesce');
  const { frozen, saved } = checkpoint(p.owner);
  assert.equal(stateName(saved.state), stateName(x.state), 'state at checkpoint');
  assert.equal(saved.socketFamily, flavor === 'ipv4' ? 'ipv4' : 'ipv6');
  if (flavor === 'mapped') assert.match(saved.local.ip, /^::ffff:10\.77\.0\.1$/);
  if (x.unread) assert.ok(saved.inqLen > 0, 'unread bytes in the receive queue');
  if (x.unsent) assert.ok(saved.unsentLen > 0, 'never-sent bytes in the send queue');
  if (x.unacked) assert.ok(saved.outqLen - saved.unsentLen > 0, 'unacknowledged bytes in the send queue');
  assert.equal(saved.recvQueue.length, saved.inqLen);
  assert.equal(saved.sendQueue.length, saved.outqLen);

  await killOwner(p.owner, frozen);
  const r = restoreIn(p.topo, 1, saved);
  const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
  p.topo.routeTo(1);
  await verifyStreams(p.peer, receiver, x);
}

/**
 * The options carried since soccr.v1.SocketOptions field 15 as the kernel reports them, read here call
 * by call (not by the engine's save): TTL or hop limit, priority, low-water marks, timeouts (ms),
 * linger, SO_REUSEPORT, IP_FREEBIND, IPV6_V6ONLY (-1 on an IPv4 socket), SO_BINDTODEVICE, window clamp.
 */
function carriedOptions(fd: number, flavor: Flavor): Record<string, unknown> {
  const out = N.pinned(16);
  const bytes = (level: number, name: number, len: number): Buffer => Buffer.from(out.buf.subarray(0, N.getsockoptBytes(fd, level, name, out, len)));
  const int = (level: number, name: number): number => N.getsockoptInt(fd, level, name);
  const ms = (name: number): number => {
    const tv = bytes(N.SOL_SOCKET, name, 16);
    return Number(tv.readBigInt64LE(0)) * 1000 + Number(tv.readBigInt64LE(8)) / 1000;
  };
  const linger = bytes(N.SOL_SOCKET, N.SO.LINGER, 8);
  const device = bytes(N.SOL_SOCKET, N.SO.BINDTODEVICE, N.IFNAMSIZ);
  return {
    ttl: flavor === 'ipv6' ? int(N.SOL_IPV6, N.IPV6_UNICAST_HOPS) : int(N.SOL_IP, N.IP_TTL),
    priority: int(N.SOL_SOCKET, N.SO.PRIORITY),
    rcvLowat: int(N.SOL_SOCKET, N.SO.RCVLOWAT),
    rcvTimeoMs: ms(N.SO.RCVTIMEO),
    sndTimeoMs: ms(N.SO.SNDTIMEO),
    linger: [linger.readInt32LE(0), linger.readInt32LE(4)],
    reusePort: int(N.SOL_SOCKET, N.SO.REUSEPORT),
    freebind: int(N.SOL_IP, N.IP_FREEBIND),
    v6only: flavor === 'ipv4' ? -1 : int(N.SOL_IPV6, N.IPV6_V6ONLY),
    device: device.subarray(0, Math.max(0, device.indexOf(0))).toString('latin1'),
    notsentLowat: int(N.SOL_TCP, N.TCP.NOTSENT_LOWAT),
    windowClamp: int(N.SOL_TCP, N.TCP.WINDOW_CLAMP),
  };
}

/** Each carried option at a value a new socket does not have (linger on with 0 s: close resets). */
const CARRIED = {
  ttl: 33,
  priority: 5,
  rcvLowat: 3,
  rcvTimeoMs: 1500,
  sndTimeoMs: 2500,
  linger: 0,
  reusePort: 1,
  freebind: 1,
  notsentLowat: 1 << 20,
  windowClamp: 200_000,
};
const BOUND_LINK = 'svc0';

/** The interface's index in the namespace. */
function ifIndex(ns: string, link: string): number {
  return Number(run('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${link}/ifindex`]).trim());
}

const STATES = [TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2, TcpState.CLOSE_WAIT, TcpState.LAST_ACK, TcpState.CLOSING, TcpState.CLOSE];

const PATHS = [
  { name: 'kernel calls batched', native: true },
  { name: 'one FFI call per kernel call', native: false },
];

for (const path of PATHS)
  describe(`repair engine on the real kernel (${path.name})`, function () {
    this.timeout(90_000);

    before(function () {
      if (path.native && process.env.SOCCRD_NATIVE_BATCH === '0') this.skip(); // forced off for this run
      assert.equal(N.useNativeBatch(path.native), path.native, `the batch library did not load (${N.batchPath().reason}): npm install builds it`);
    });

    after(() => {
      N.useNativeBatch(DEFAULT_NATIVE);
    });

    afterEach(async () => {
      await killAllEndpoints();
      destroyTopologies();
    });

    after(() => {
      assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
    });

    for (const flavor of ['ipv4', 'ipv6', 'mapped'] as Flavor[]) {
      for (const state of STATES) {
        it(`${stateName(state)} over ${flavor}: checkpoint, owner killed, restored in another namespace, both streams exact`, async () => {
          await migrate(flavor, state);
        });
      }
    }

    it('a queue set of more than 8 MiB survives', async () => {
      const big = { ...USER_OPTIONS, sndBuf: 8 * MiB, rcvBuf: 4 * MiB };
      const p = await connectPair('ipv4', 2, big);
      await p.peer.command('write', { bytes: 6 * MiB });
      await sleep(300);
      p.topo.blackhole(0);
      await p.owner.command('write', { bytes: 12 * MiB });
      await sleep(200);
      const ownerAt = await p.owner.command('quiesce');
      const { frozen, saved } = checkpoint(p.owner);
      assert.ok(saved.inqLen + saved.outqLen >= 8 * MiB, `queues hold ${saved.inqLen} + ${saved.outqLen} bytes`);
      await killOwner(p.owner, frozen);
      const r = restoreIn(p.topo, 1, saved);
      const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
      p.topo.routeTo(1);
      await verifyStreams(p.peer, receiver, { state: TcpState.ESTABLISHED, unread: true, unacked: true, unsent: true, ownerClosed: false, peerClosed: false });
    });

    it("an owner's SO_PEEK_OFF neither shifts the saved receive queue nor is lost: off while frozen, back on resume", async () => {
      const p = await connectPair('ipv4', 2);
      await p.owner.command('setopts', { options: { peekOff: 1000 } });
      const x = await setUp(p, TcpState.ESTABLISHED);
      const ownerAt = await p.owner.command('quiesce');
      const { frozen, saved } = checkpoint(p.owner);
      assert.equal(frozen.peekOff, 1000, 'the owner set a peek offset (Linux 6.10 and later have it for TCP)');
      assert.ok(saved.recvQueue.length > 1000, 'enough unread bytes for the offset to matter');
      assert.equal(N.getsockoptInt(frozen.fd, N.SOL_SOCKET, N.SO.PEEK_OFF), -1, 'off while frozen');
      await killOwner(p.owner, frozen);
      const r = restoreIn(p.topo, 1, saved);
      const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
      p.topo.routeTo(1);
      await verifyStreams(p.peer, receiver, x);
    });

    it("a frozen socket resumed at its owner gets the owner's SO_PEEK_OFF back", async () => {
      const p = await connectPair('ipv6', 1);
      await p.owner.command('setopts', { options: { peekOff: 7 } });
      const frozen = pause(takeTcpSocket(p.owner.pid, p.owner.connectedFd));
      assert.equal(N.getsockoptInt(frozen.fd, N.SOL_SOCKET, N.SO.PEEK_OFF), -1, 'off while frozen');
      resume(frozen);
      assert.equal(N.getsockoptInt(frozen.fd, N.SOL_SOCKET, N.SO.PEEK_OFF), 7, 'back after resume');
      N.close(frozen.fd);
    });

    it('one saved state restores twice, into two namespaces in turn', async () => {
      const p = await connectPair('ipv6', 3);
      const x = await setUp(p, TcpState.ESTABLISHED);
      const ownerAt = await p.owner.command('quiesce');
      const { frozen, saved } = checkpoint(p.owner);
      const before = JSON.stringify(saved);
      await killOwner(p.owner, frozen);
      // First restore: rebuilt, checked, then dropped silently (as an aborted destination would be).
      const first = restoreIn(p.topo, 1, saved);
      silentClose(first);
      assert.equal(JSON.stringify(saved), before, 'restore modified the saved state');
      // Second restore from the very same value goes live.
      const second = restoreIn(p.topo, 2, saved);
      const receiver = await adopt(p.topo, 2, second, saved, ownerAt);
      p.topo.routeTo(2);
      await verifyStreams(p.peer, receiver, x);
    });

    it('a saved snd_wl1 beyond the receive window (ACK taken, data dropped under memory pressure) restores, both streams exact', async () => {
      const p = await connectPair('ipv4', 2);
      const x = await setUp(p, TcpState.ESTABLISHED);
      const ownerAt = await p.owner.command('quiesce');
      const { frozen, saved } = checkpoint(p.owner);
      await killOwner(p.owner, frozen);
      const w = saved.window;
      assert.ok(w, 'the saved state has a repair window');
      const beyond = { ...saved, window: { ...w, sndWl1: (saved.inqSeq + w.rcvWnd + 100_000) >>> 0 } };
      const r = restore(beyond, { netns: p.topo.nsPath(p.topo.hosts[1]) });
      assert.deepEqual(finishRestoredAll([r]), [undefined], 'go-live steps');
      assert.equal(save(r).window?.sndWl1, saved.inqSeq, 'snd_wl1 clamped to rcv_nxt');
      const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
      p.topo.routeTo(1);
      await verifyStreams(p.peer, receiver, x);
    });

    for (const flavor of ['ipv4', 'ipv6', 'mapped'] as Flavor[]) {
      it(`over ${flavor}: every option carried since field 15, set to a value a new socket lacks, reads back after a restore in another namespace (bound to an interface of the same name); refused, naming it, where that interface is missing`, async () => {
        const p = await connectPair(flavor, 2, USER_OPTIONS, BOUND_LINK);
        await p.owner.command('setopts', { options: CARRIED, device: BOUND_LINK });
        const x = await setUp(p, TcpState.ESTABLISHED);
        const ownerAt = await p.owner.command('quiesce');
        const { frozen, saved } = checkpoint(p.owner);
        const source = carriedOptions(frozen.fd, flavor);
        // The kernel moves the window clamp itself (it follows the receive buffer): whatever it was at the freeze.
        const { windowClamp, ...set } = CARRIED;
        const v6only = flavor === 'ipv4' ? -1 : flavor === 'ipv6' ? 1 : 0;
        assert.deepEqual(
          { ...source, windowClamp: 0 },
          { ...set, linger: [1, set.linger], v6only, device: BOUND_LINK, windowClamp: 0 },
          `the owner's options as set (window clamp ${windowClamp} set, ${String(source.windowClamp)} at the freeze)`,
        );
        assert.equal(saved.options.bindDevice, BOUND_LINK);
        assert.equal(saved.options.lingerSeconds, 0, 'linger on with 0 s is carried as 0, not as absent');
        await killOwner(p.owner, frozen);
        // The peer's namespace has no interface of that name: refused before anything is bound.
        assert.throws(
          () => restore(saved, { netns: p.topo.nsPath(p.topo.peer) }),
          (err: unknown) => err instanceof SoccrError && err.kind === 'TARGET_STATE' && err.message.includes(`no interface ${BOUND_LINK}`),
        );
        const r = restoreIn(p.topo, 1, saved);
        assert.deepEqual(carriedOptions(r.fd, flavor), source, "the restored socket's options");
        const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
        p.topo.routeTo(1);
        await verifyStreams(p.peer, receiver, x);
      });
    }

    it('an IPv6 link-local connection carries its scope by name: refused where the interface is missing, restored where it moved (another index there)', async () => {
      const LINK = 'lk';
      const p = await connectPair('ipv6', 2, USER_OPTIONS, LINK);
      await killAllEndpoints();
      const [peerNs, a, b] = [p.topo.peer, p.topo.hosts[0], p.topo.hosts[1]];
      run('ip', ['-n', peerNs, 'addr', 'add', 'fe80::2/64', 'dev', 'p0', 'nodad']);
      run('ip', ['-n', a, 'addr', 'add', 'fe80::1/64', 'dev', LINK, 'nodad']);
      const owner = await Endpoint.start(a, { mode: 'listen', ip: 'fe80::1', device: LINK, port: 7000, sendSeed: OWNER_TO_PEER, recvSeed: PEER_TO_OWNER });
      const peer = await Endpoint.start(peerNs, { mode: 'connect', ip: 'fe80::1', device: 'p0', port: 7000, sendSeed: PEER_TO_OWNER, recvSeed: OWNER_TO_PEER });
      await owner.waitEvent('connected', 10_000);
      const pair = { topo: p.topo, owner, peer };
      const x = await setUp(pair, TcpState.ESTABLISHED);
      const ownerAt = await owner.command('quiesce');
      const { frozen, saved } = checkpoint(owner);
      assert.deepEqual(saved.local, { family: 'ipv6', ip: 'fe80::1', port: 7000, scope: LINK });
      assert.equal(saved.remote.scope, LINK);
      await killOwner(owner, frozen);
      assert.throws(
        () => restore(saved, { netns: p.topo.nsPath(peerNs) }),
        (err: unknown) => err instanceof SoccrError && err.kind === 'TARGET_STATE' && err.message.includes(`no interface ${LINK}`),
      );
      // The link itself moves to B (B's own of that name renamed first, so the moved one gets another index).
      const indexInA = ifIndex(a, LINK);
      run('ip', ['-n', b, 'link', 'set', LINK, 'down']);
      run('ip', ['-n', b, 'link', 'set', LINK, 'name', 'old0']);
      run('ip', ['-n', a, 'link', 'set', LINK, 'netns', b]);
      run('ip', ['-n', b, 'addr', 'add', 'fe80::1/64', 'dev', LINK, 'nodad']);
      run('ip', ['-n', b, 'link', 'set', LINK, 'up']);
      const indexInB = ifIndex(b, LINK);
      assert.notEqual(indexInB, indexInA, 'the link has another index in B');
      const r = restoreIn(p.topo, 1, saved);
      const local = N.pinned(N.SOCKADDR_STORAGE);
      N.getsockname(r.fd, local);
      assert.equal(local.buf.readUInt32LE(24), indexInB, "the restored socket's sin6_scope_id: the link's index in B");
      const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
      // setUp cut the peer's link (p0) to fill the queues: the link now leads to B.
      p.topo.unblackhole(0);
      await verifyStreams(peer, receiver, x);
    });

    describe('refusals', () => {
      it('a saved state whose carried options or link-local scope no socket could have is refused before any socket is made (INVALID_STATE)', () => {
        // Without the fixture's window, which validateSaved would refuse on its own.
        const state = (over: Partial<SavedConnection>): SavedConnection => savedConnection({ window: undefined, ...over });
        const o = savedConnection().options;
        const v6 = {
          socketFamily: 'ipv6' as const,
          local: { family: 'ipv6' as const, ip: 'fd77::1', port: 7000 },
          remote: { family: 'ipv6' as const, ip: 'fd77::2', port: 40000 },
        };
        const ll = { ...v6, local: { ...v6.local, ip: 'fe80::1' }, remote: { ...v6.remote, ip: 'fe80::2' } };
        const cases: Array<[RegExp, SavedConnection]> = [
          [/IPV6_V6ONLY on a connection that is not IPv6/, state({ options: { ...o, v6only: true } })],
          [/TTL 0 outside 1\.\.255/, state({ options: { ...o, ttl: 0 } })],
          [/hop limit 256 outside 0\.\.255/, state({ ...v6, options: { ...o, bindDevice: '', ttl: 256 } })],
          [/link-local address fe80::1 without its interface/, state({ ...ll, options: { ...o, bindDevice: '' } })],
          [/more than one interface \(eth1, eth0\)/, state({ ...ll, local: { ...ll.local, scope: 'eth0' }, remote: { ...ll.remote, scope: 'eth0' } })],
          [/SO_LINGER -1 s negative/, state({ options: { ...o, lingerSeconds: -1 } })],
        ];
        for (const [why, s] of cases) {
          assert.throws(
            () => restore(s),
            (err: unknown) => err instanceof SoccrError && err.kind === 'INVALID_STATE' && why.test(err.message),
            why.source,
          );
        }
        // Where each is right, the same checks pass it: the fixture's options (bound to eth1), on a link-local connection scoped to it.
        validateSaved(state({ ...ll, local: { ...ll.local, scope: 'eth1' }, remote: { ...ll.remote, scope: 'eth1' } }));
      });

      it('each refused socket gets its typed error and stays untouched', async () => {
        const p = await connectPair('ipv4', 1);
        await p.owner.command('read', { on: true });
        await p.peer.command('read', { on: true });
        p.topo.blackhole(0);
        const fds = await p.owner.extras(PEER_V4);
        p.topo.unblackhole(0);
        const before = listTcpSockets(p.owner.pid);

        const kindOf = (fn: () => unknown): string => {
          try {
            const fd = fn();
            if (typeof fd === 'number') N.close(fd);
          } catch (err) {
            assert.ok(err instanceof SoccrError, `not a SoccrError: ${String(err)}`);
            return err.kind;
          }
          return 'accepted';
        };
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, 1000)),
          'NO_SUCH_FD',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.file)),
          'NOT_A_SOCKET',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.udp)),
          'NOT_TCP',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.unix)),
          'NOT_TCP',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.listening)),
          'LISTENING',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.unconnected)),
          'UNSUPPORTED_STATE',
        );
        // A connect in progress is taken (SYN_SENT moves: states.test).
        assert.equal(
          kindOf(() => takeTcpSocket(p.owner.pid, fds.synSent)),
          'accepted',
        );
        const gone = await Endpoint.start(p.topo.peer, { mode: 'adopt', unixPath: socketPath('gone'), sendSeed: 1, recvSeed: 1 });
        const gonePid = gone.pid;
        gone.kill();
        await gone.exited();
        assert.equal(
          kindOf(() => takeTcpSocket(gonePid, 3)),
          'NO_SUCH_PROCESS',
        );
        assert.equal(
          kindOf(() => takeTcpSocket(-5, 3)),
          'NO_SUCH_PROCESS',
        );

        // Nothing changed: same sockets in the same states, and the connection still carries traffic. (The
        // connect in progress is left out: once the link is back, its next SYN meets a closed port.)
        const others = (list: typeof before): Array<[number, string]> => list.filter((s) => s.fd !== fds.synSent).map((s) => [s.fd, s.stateName]);
        assert.deepEqual(others(listTcpSockets(p.owner.pid)), others(before));
        const o0 = await p.owner.status();
        const q0 = await p.peer.status();
        await p.owner.command('write', { bytes: 100 * KiB });
        await p.peer.command('write', { bytes: 100 * KiB });
        await p.peer.until((s) => s.received === o0.sent + 100 * KiB, 10_000, 'traffic after refusals');
        const o1 = await p.owner.until((s) => s.received === q0.sent + 100 * KiB, 10_000, 'traffic after refusals');
        assert.equal(o1.mismatchAt, -1);
      });

      it('lists a process socket table and finds the owner of a 4-tuple', async () => {
        const p = await connectPair('ipv6', 1);
        const list = listTcpSockets(p.owner.pid);
        const conn = list.find((s) => s.fd === p.owner.connectedFd);
        assert.ok(conn, 'the connection is listed');
        assert.equal(conn.stateName, 'ESTABLISHED');
        assert.equal(conn.family, 'ipv6');
        assert.deepEqual(conn.remote.ip, PEER_V6);
        const owners = findOwners(conn.local, conn.remote);
        assert.deepEqual(
          owners.map((o) => [o.pid, o.fd]),
          [[p.owner.pid, p.owner.connectedFd]],
        );
      });

      it('an owner still running gets EINVAL from writes while frozen, and the socket resumes', async () => {
        const p = await connectPair('ipv4', 1);
        const { frozen } = checkpoint(p.owner);
        const s = await p.owner.command('write', { bytes: 10 });
        assert.match(s.error ?? '', /errno 22/, 'a write into the frozen socket fails with EINVAL');
        // The fixture stops at its first error, so the kernel side of resuming is checked here.
        resume(frozen);
        const reuse = N.getsockoptInt(frozen.fd, N.SOL_SOCKET, N.SO.REUSEADDR);
        assert.equal(reuse, 1, 'SO_REUSEADDR back after resume');
        N.close(frozen.fd);
      });
    });
  });

describe('held sockets send nothing (issue 14)', function () {
  this.timeout(120_000);
  // Longer than the first retransmission timeout (1 s), a tail-loss probe and a 1 s keepalive.
  const HOLD_MS = 4000;

  afterEach(async () => {
    stopCaptures();
    await killAllEndpoints();
    destroyTopologies();
  });

  /**
   * Rebuilds the frozen connection in the second host with no network lock at all, captures what leaves
   * that host for HOLD_MS (the peer would receive it), then hands it over and checks both streams.
   */
  async function holdSilently(p: Awaited<ReturnType<typeof connectPair>>, x: Parameters<typeof verifyStreams>[2]): Promise<void> {
    const ownerAt = await p.owner.command('quiesce');
    const { frozen, saved } = checkpoint(p.owner);
    await killOwner(p.owner, frozen);
    const host = p.topo.hosts[1];
    const capture = await captureTcp(host, 'h1');
    const r = restore(saved, { netns: p.topo.nsPath(host) });
    await sleep(HOLD_MS);
    assert.deepEqual(await capture.stop(), [], `segments that left the held ${stateName(saved.state)} socket`);
    const receiver = await adopt(p.topo, 1, r, saved, ownerAt);
    p.topo.routeTo(1);
    await verifyStreams(p.peer, receiver, x);
  }

  for (const state of [TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.CLOSE_WAIT, TcpState.LAST_ACK, TcpState.CLOSING]) {
    it(`${stateName(state)} with data in flight: held ${HOLD_MS / 1000} s without a lock, not one segment leaves; then live, both streams exact`, async () => {
      const p = await connectPair('ipv4', 2);
      await holdSilently(p, await setUp(p, state));
    });
  }

  it(`ESTABLISHED and idle, keepalive after 1 s: held ${HOLD_MS / 1000} s without a lock, no keepalive probe leaves; then live, both streams exact`, async () => {
    const p = await connectPair('ipv4', 2, { ...USER_OPTIONS, keepIdle: 1, keepIntvl: 1 });
    p.topo.blackhole(0); // the old host answers nothing any more, as in the other cases
    await holdSilently(p, { state: TcpState.ESTABLISHED, unread: false, unacked: false, unsent: false, ownerClosed: false, peerClosed: false });
  });
});

describe('kernel-call path of the daemon', function () {
  this.timeout(60_000);

  afterEach(async () => {
    await cleanupDaemons();
  });

  it('GetVersion says which path the daemon uses; SOCCRD_NATIVE_BATCH=0 forces the per-call one', async function () {
    if (!DEFAULT_NATIVE) this.skip(); // no batch library in this run: nothing to tell apart
    for (const [env, native] of [
      [{}, true],
      [{ SOCCRD_NATIVE_BATCH: '0' }, false],
    ] as const) {
      const daemon = await DaemonProcess.start({ env });
      const client = new SoccrClient(daemon.address);
      try {
        assert.equal((await client.getVersion()).features?.nativeBatch, native, `GetVersion with ${JSON.stringify(env)}`);
        assert.match(daemon.output, native ? /kernel calls: batched/ : /kernel calls: one FFI call each/, 'the start log names the path');
      } finally {
        client.close();
        await daemon.stop();
      }
    }
  });
});
