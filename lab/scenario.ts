// Connection scenarios shared by the tests: a server process (the owner) in a host namespace holding a
// connection with a peer process in the peer namespace, brought into a given TCP state with data in
// flight both ways, and the end-to-end check that both streams arrive exactly once.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Endpoint } from './endpoint';
import type { EndpointStatus } from './fixtures/endpoint';
import { SERVICE_V4, SERVICE_V6, Topology } from './netns';
import { streamHash } from './stream';
import { TcpState, stateName } from '../protocol/saved-state';
import { listTcpSockets } from '../daemon/repair/acquire';

export type Flavor = 'ipv4' | 'ipv6' | 'mapped';
export const OWNER_TO_PEER = 11;
export const PEER_TO_OWNER = 22;
export const PORT = 5001;
export const KiB = 1024;
export const MiB = 1024 * 1024;

export const USER_OPTIONS = { noDelay: 1, keepAlive: 1, keepIdle: 33, keepIntvl: 7, keepCnt: 4, userTimeout: 30000, tos: 0x10, mark: 42, reuseAddr: 1 };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Pair {
  topo: Topology;
  owner: Endpoint;
  peer: Endpoint;
}

/** A connection between new processes in a new topology (`hostLink`: see Topology.create). */
export async function connectPair(flavor: Flavor, hosts: number, ownerOptions: Record<string, number> = USER_OPTIONS, hostLink?: string): Promise<Pair> {
  const topo = Topology.create(hosts, hostLink);
  topologies.add(topo);
  return addPair(topo, flavor, PORT, ownerOptions);
}

/** Another connection in the topology, between new processes: an owner in its first host listening on `port`, and a peer. */
export async function addPair(topo: Topology, flavor: Flavor, port: number, ownerOptions: Record<string, number> = USER_OPTIONS): Promise<Pair> {
  const listenIp = flavor === 'ipv4' ? SERVICE_V4 : flavor === 'ipv6' ? SERVICE_V6 : '::';
  const connectIp = flavor === 'ipv6' ? SERVICE_V6 : SERVICE_V4;
  const owner = await Endpoint.start(topo.hosts[0], { mode: 'listen', ip: listenIp, port, sendSeed: OWNER_TO_PEER, recvSeed: PEER_TO_OWNER });
  const peer = await Endpoint.start(topo.peer, { mode: 'connect', ip: connectIp, port, sendSeed: PEER_TO_OWNER, recvSeed: OWNER_TO_PEER });
  await owner.waitEvent('connected', 10_000);
  await owner.command('setopts', { options: ownerOptions, congestion: 'reno' });
  // Some traffic both ways first, read by both sides.
  await owner.command('write', { bytes: 200 * KiB });
  await peer.command('write', { bytes: 200 * KiB });
  await peer.until((s) => s.received === 200 * KiB, 10_000, 'warm-up bytes at the peer');
  await owner.until((s) => s.received === 200 * KiB, 10_000, 'warm-up bytes at the owner');
  // From now on neither side reads: queues fill.
  await owner.command('read', { on: false });
  await peer.command('read', { on: false });
  return { topo, owner, peer };
}

/** What a scenario leaves in the frozen connection, checked against the saved state. */
export interface Expect {
  state: TcpState;
  unread: boolean;
  unacked: boolean;
  unsent: boolean;
  /** the owner closed its sending side before the checkpoint: the peer will see that FIN, legitimately */
  ownerClosed: boolean;
  /** the peer closed its sending side before the checkpoint */
  peerClosed: boolean;
}

/** Waits (bounded) until the owner's connection is in `state`, as /proc/net/tcp shows it. */
export async function ownerReaches(owner: Endpoint, state: TcpState, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'none';
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const s = listTcpSockets(owner.pid).find((x) => x.fd === owner.connectedFd);
    seen = s ? s.stateName : 'gone';
    if (s?.state === state) return;
    await sleep(10);
  }
  throw new Error(`owner connection is ${seen}, not ${stateName(state)}, after ${timeoutMs} ms`);
}

/** Brings the connection into the state under test, with data in flight where the state allows. */
export async function setUp(p: Pair, state: TcpState): Promise<Expect> {
  const x = await bringInto(p, state);
  // Timing-based steps can lag on a loaded machine: wait for the state rather than trust a sleep.
  // A socket in CLOSE is unhashed and absent from /proc/net/tcp: the checkpoint itself checks that one.
  if (state !== TcpState.CLOSE) await ownerReaches(p.owner, state);
  return x;
}

async function bringInto(p: Pair, state: TcpState): Promise<Expect> {
  const { owner, peer, topo } = p;
  const cut = (): void => topo.blackhole(0);
  const e = (x: Omit<Expect, 'state'>): Expect => ({ state, ...x });
  switch (state) {
    case TcpState.ESTABLISHED:
    case TcpState.FIN_WAIT1:
      await peer.command('write', { bytes: 256 * KiB });
      await owner.until((s) => s.received >= 0, 100, 'noop');
      await sleep(100);
      cut();
      // Sent into a dead link: part goes out unacknowledged, the rest waits unsent.
      await owner.command('write', { bytes: 2 * MiB });
      await peer.command('write', { bytes: 64 * KiB });
      if (state === TcpState.FIN_WAIT1) await owner.command('shutdown');
      await sleep(150);
      return e({ unread: true, unacked: true, unsent: true, ownerClosed: state === TcpState.FIN_WAIT1, peerClosed: false });
    case TcpState.FIN_WAIT2:
      await owner.command('write', { bytes: 60 * KiB });
      await owner.command('shutdown');
      await peer.command('write', { bytes: 256 * KiB });
      await sleep(150);
      cut();
      await peer.command('write', { bytes: 64 * KiB });
      await sleep(50);
      return e({ unread: true, unacked: false, unsent: false, ownerClosed: true, peerClosed: false });
    case TcpState.CLOSE_WAIT:
    case TcpState.LAST_ACK:
      // Small enough to fit the owner's receive window whatever autotuning did during the warm-up: the
      // peer's FIN queues behind these bytes and must get through while the owner does not read.
      await peer.command('write', { bytes: 32 * KiB });
      await peer.command('shutdown');
      await ownerReaches(owner, TcpState.CLOSE_WAIT); // the peer's FIN is in before the owner closes
      await sleep(50);
      cut();
      await owner.command('write', { bytes: 2 * MiB });
      if (state === TcpState.LAST_ACK) await owner.command('shutdown');
      await sleep(150);
      return e({ unread: true, unacked: true, unsent: true, ownerClosed: state === TcpState.LAST_ACK, peerClosed: true });
    case TcpState.CLOSING:
      // A small receive buffer at the peer keeps part of the owner's bytes unsent, its FIN behind them.
      await peer.command('setopts', { options: { rcvBuf: 16 * KiB } });
      await peer.command('write', { bytes: 64 * KiB });
      await owner.command('write', { bytes: 2 * MiB });
      await sleep(150);
      await owner.command('shutdown'); // the FIN waits behind unsent bytes: FIN_WAIT1
      await sleep(20);
      await peer.command('shutdown'); // the peer's FIN arrives first: CLOSING
      await sleep(150);
      cut();
      return e({ unread: true, unacked: false, unsent: true, ownerClosed: true, peerClosed: true });
    case TcpState.CLOSE:
      await peer.command('write', { bytes: 64 * KiB });
      await peer.command('shutdown');
      await owner.command('write', { bytes: 60 * KiB });
      await sleep(100);
      await owner.command('shutdown'); // LAST_ACK, then CLOSE once the peer acknowledges
      await peer.command('read', { on: true });
      await peer.until((s) => s.eof, 10_000, 'the owner FIN at the peer');
      await sleep(100);
      cut();
      return e({ unread: true, unacked: false, unsent: false, ownerClosed: true, peerClosed: true });
    default:
      throw new Error(`no set-up for ${stateName(state)}`);
  }
}

/** A new owner in host `host` that takes the connection over the hand-over socket and goes on from `at`. */
export function receiverFor(p: Pair, host: number, path: string, at: EndpointStatus): Promise<Endpoint> {
  return Endpoint.start(p.topo.hosts[host], {
    mode: 'adopt',
    unixPath: path,
    sendSeed: OWNER_TO_PEER,
    recvSeed: PEER_TO_OWNER,
    sendOffset: at.sent,
    recvOffset: at.received,
    reading: true,
  });
}

/** Both streams complete, in order, exactly once; no RST; FIN only where one was sent. */
export async function verifyStreams(peer: Endpoint, receiver: Endpoint, x: Expect): Promise<void> {
  await peer.command('read', { on: true });
  // New traffic in every direction still open.
  if (!x.peerClosed) await peer.command('write', { bytes: 300 * KiB });
  if (!x.ownerClosed) await receiver.command('write', { bytes: 300 * KiB });
  const p0 = await peer.status();
  const r0 = await receiver.status();
  const peerFinal = await peer.until((s) => s.received === r0.sent + r0.pending || s.error !== null, 30_000, 'all owner bytes at the peer');
  const recvFinal = await receiver.until((s) => s.received === p0.sent + p0.pending || s.error !== null, 30_000, 'all peer bytes at the new owner');
  assert.equal(peerFinal.error, null, 'peer saw an error (RST?)');
  assert.equal(recvFinal.error, null, 'new owner saw an error');
  assert.equal(peerFinal.mismatchAt, -1, 'peer received a wrong byte');
  assert.equal(recvFinal.mismatchAt, -1, 'new owner received a wrong byte');
  assert.equal(peerFinal.hash, streamHash(OWNER_TO_PEER, peerFinal.received), 'owner-to-peer stream hash');
  assert.equal(recvFinal.hash, streamHash(PEER_TO_OWNER, recvFinal.received), 'peer-to-owner stream hash');
  if (x.ownerClosed) {
    const s = await peer.until((q) => q.eof, 10_000, 'the FIN the owner sent before the checkpoint');
    assert.equal(s.received, r0.sent, 'FIN arrived after exactly the owner bytes');
  } else {
    await sleep(50);
    assert.equal((await peer.status()).eof, false, 'peer saw a FIN nobody sent');
    assert.equal(stateName((await peer.status()).state), x.peerClosed ? 'FIN_WAIT2' : 'ESTABLISHED', 'peer TCP state');
  }
  if (x.peerClosed) {
    const s = await receiver.until((q) => q.eof, 10_000, 'the peer FIN at the new owner');
    assert.equal(s.received, p0.sent, 'peer FIN arrived after exactly the peer bytes');
  } else {
    assert.equal((await receiver.status()).eof, false, 'new owner saw a FIN nobody sent');
  }
}

const topologies = new Set<Topology>();
let socketDir: string | undefined;
let socketCounter = 0;

/** A fresh path for a Unix socket, in a directory removed with the topologies. */
export function socketPath(tag: string): string {
  socketDir ??= mkdtempSync(join(tmpdir(), 'soccrt-u'));
  return join(socketDir, `${tag}-${socketCounter++}.sock`);
}

/** Removes every topology and socket file the scenarios created (call from afterEach). */
export function destroyTopologies(): void {
  for (const t of topologies) t.destroy();
  topologies.clear();
  if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  socketDir = undefined;
}
