// The hand-over of restored sockets to their new owner, both sides, over real sockets on 127.0.0.1: a
// TCP connection whose one end is put into repair mode ("restored-like"), handed over through a Unix
// socket in os.tmpdir(), and made live only once the receiver holds it.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readlinkSync, unlinkSync } from 'node:fs';
import * as net from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as N from '../daemon/kernel/native';
import { FrozenSocket, localAddress, pause, peerAddress, resume } from '../daemon/repair/engine';
import { DeliveryItem, deliver } from '../daemon/custody/delivery';
import { SoccrError } from '../protocol/errors';
import { encodeSockaddr } from '../protocol/address';
import { DeliveredSocket, HandoverError, SocketReceiver, receiveOnce } from '../receiver/receiver';
import { NOBODY } from './support/other-user';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- resources, all released after each test ----------------------------------------------------

const fds = new Set<number>();
const nodeSockets = new Set<net.Socket>();
const servers = new Set<net.Server>();
const receivers = new Set<SocketReceiver>();
const paths = new Set<string>();
let pathCounter = 0;

function closeFd(fd: number): void {
  if (fds.delete(fd)) N.closeQuietly(fd);
}

function track(s: net.Socket): net.Socket {
  nodeSockets.add(s);
  s.on('error', () => {
    /* resets at teardown are expected */
  });
  return s;
}

function sockPath(): string {
  const p = join(tmpdir(), `soccrd-dlv-${process.pid}-${pathCounter++}.sock`);
  paths.add(p);
  return p;
}

async function listenReceiver(path: string): Promise<SocketReceiver> {
  const r = await SocketReceiver.listen(path);
  receivers.add(r);
  return r;
}

async function cleanup(): Promise<void> {
  for (const r of receivers) r.on('error', () => undefined);
  await Promise.all([...receivers].map((r) => r.close()));
  receivers.clear();
  for (const fd of [...fds]) closeFd(fd);
  for (const s of nodeSockets) s.destroy();
  nodeSockets.clear();
  await Promise.all([...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  servers.clear();
  for (const p of paths) if (existsSync(p)) unlinkSync(p);
  paths.clear();
}

// ---- TCP connections on loopback ---------------------------------------------------------------

interface TcpPeer {
  server: net.Server;
  port: number;
  /** accepted sockets by the connecting side's port */
  accepted: Map<number, net.Socket>;
}

async function tcpServer(): Promise<TcpPeer> {
  const accepted = new Map<number, net.Socket>();
  const server = net.createServer((s) => {
    track(s);
    accepted.set(s.remotePort as number, s);
  });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

const addrBuf = N.pinned(N.SOCKADDR_STORAGE);

/** A connection to `peer` whose client end is a raw fd (never owned by Node), frozen in repair mode. */
interface Frozen {
  frozen: FrozenSocket;
  peerSide: net.Socket;
  item: DeliveryItem;
}

async function frozenConnection(peer: TcpPeer, index: number, beforeFreeze?: (peerSide: net.Socket, fd: number) => Promise<void>): Promise<Frozen> {
  const fd = N.socket(N.AF_INET, N.SOCK_STREAM | N.SOCK_CLOEXEC, N.IPPROTO_TCP);
  fds.add(fd);
  const len = encodeSockaddr({ family: 'ipv4', ip: '127.0.0.1', port: peer.port }, addrBuf.buf);
  N.connect(fd, addrBuf, len); // completes at once on loopback
  const local = localAddress(fd);
  const deadline = Date.now() + 5000;
  while (!peer.accepted.has(local.port)) {
    if (Date.now() > deadline) throw new Error('the server never accepted the connection');
    await sleep(2);
  }
  const peerSide = peer.accepted.get(local.port) as net.Socket;
  if (beforeFreeze) await beforeFreeze(peerSide, fd);
  const frozen = pause(fd);
  const remote = peerAddress(fd, 'ipv4');
  return { frozen, peerSide, item: { fd, meta: { id: `conn-${index}`, session: 'sess-1', index, local, remote, state: 'ESTABLISHED' } } };
}

/** How many fds of this process refer to the same socket as `fd`. */
function references(fd: number): number {
  const target = readlinkSync(`/proc/self/fd/${fd}`);
  let n = 0;
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === target) n++;
    } catch {
      /* the fd readdir itself used, closed since */
    }
  }
  return n;
}

function isRepairing(fd: number): boolean {
  return N.getsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR) !== 0;
}

async function readExactly(s: net.Socket, n: number, timeoutMs = 5000): Promise<string> {
  let got = '';
  return new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => {
      s.off('data', onData);
      reject(new Error(`read ${JSON.stringify(got)}, expected ${n} bytes`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.length >= n) {
        clearTimeout(t);
        s.off('data', onData);
        s.pause();
        resolve(got);
      }
    };
    s.on('data', onData);
    s.resume();
  });
}

/** Resolves true if `s` sees any end, close or error within `ms`: a connection that should stay silent. */
async function seesAnything(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const t = setTimeout(() => {
      s.off('end', hit).off('close', hit).off('error', hit);
      resolve(false);
    }, ms);
    const hit = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    s.once('end', hit).once('close', hit).once('error', hit);
    s.resume();
  });
}

/** A stand-in receiver written against the raw protocol (Node drops the fds, the daemon keeps its copies). */
interface RawReceiver {
  lines: Array<Record<string, unknown>>;
  conn: Promise<net.Socket>;
}

async function rawReceiver(path: string, onLine: (msg: Record<string, unknown>, conn: net.Socket) => void): Promise<RawReceiver> {
  const lines: Array<Record<string, unknown>> = [];
  const server = net.createServer();
  servers.add(server);
  const conn = new Promise<net.Socket>((resolve) => {
    server.on('connection', (c) => {
      track(c);
      resolve(c);
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
          buf = buf.slice(nl + 1);
          lines.push(msg);
          onLine(msg, c);
        }
      });
    });
  });
  server.listen(path);
  await once(server, 'listening');
  return { lines, conn };
}

function assertDelivery(err: unknown, pattern: RegExp): true {
  assert.ok(err instanceof SoccrError, `expected a SoccrError, got ${String(err)}`);
  assert.equal(err.kind, 'DELIVERY');
  assert.match(err.message, pattern);
  return true;
}

// ---- tests -------------------------------------------------------------------------------------

describe('hand-over of restored sockets', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  it('hands a connection over and makes it live only once the receiver holds it', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0, async (peerSide, fd) => {
      peerSide.write('queued-before');
      const deadline = Date.now() + 5000;
      while (N.ioctlInt(fd, N.SIOCINQ) < 13) {
        if (Date.now() > deadline) throw new Error('bytes never reached the client');
        await sleep(2);
      }
    });
    const fd = c.item.fd;
    assert.equal(N.tryRecv(fd, addrBuf, 0, 16, N.MSG_DONTWAIT), -osConstants.errno.EPERM, 'a socket in repair mode refuses reads');

    const path = sockPath();
    const receiver = await listenReceiver(path);
    const events: string[] = [];
    let delivered: DeliveredSocket | undefined;
    receiver.on('socket', (socket, meta) => {
      events.push('socket');
      delivered = { socket: track(socket), meta };
    });
    const batch = once(receiver, 'batch') as Promise<[DeliveredSocket[]]>;
    receiver.on('error', (err) => events.push(`error: ${err.message}`));

    await deliver(path, [c.item], () => {
      events.push('goLive');
      // The receiver holds its own descriptor of the socket: it has received it, and has acknowledged.
      assert.equal(references(fd), 2, 'the receiver holds the socket when goLive runs');
      assert.ok(isRepairing(fd), 'still in repair mode before goLive');
      resume(c.frozen);
    });
    closeFd(fd); // the daemon's copy: the connection now lives in the receiver's descriptor only
    const [got] = await batch;
    assert.deepEqual(events, ['goLive', 'socket']);
    assert.equal(got.length, 1);
    assert.ok(got[0].socket === delivered?.socket);
    assert.ok(got[0].socket instanceof net.Socket);
    assert.deepEqual(got[0].meta, c.item.meta);
    assert.deepEqual(got[0].meta.local, { family: 'ipv4', ip: '127.0.0.1', port: c.peerSide.remotePort });
    assert.deepEqual(got[0].meta.remote, { family: 'ipv4', ip: '127.0.0.1', port: peer.port });

    // Data both ways: first what was queued while frozen, then fresh bytes in each direction.
    const s = got[0].socket;
    assert.equal(await readExactly(s, 13), 'queued-before');
    c.peerSide.write('to-new-owner');
    assert.equal(await readExactly(s, 12), 'to-new-owner');
    s.write('from-new-owner');
    assert.equal(await readExactly(c.peerSide, 14), 'from-new-owner');
  });

  it('speaks the documented protocol and calls goLive only after the ack', async () => {
    const peer = await tcpServer();
    const a = await frozenConnection(peer, 0);
    const b = await frozenConnection(peer, 1);
    const path = sockPath();
    let ackAt = 0;
    const rx = await rawReceiver(path, (msg, conn) => {
      if (msg.type === 'end') {
        // A slow receiver: the ack comes 150 ms after "end".
        setTimeout(() => {
          ackAt = Date.now();
          conn.write(`${JSON.stringify({ type: 'ack', count: msg.count })}\n`);
        }, 150);
      }
    });
    let liveAt = 0;
    await deliver(path, [a.item, b.item], () => {
      liveAt = Date.now();
      assert.ok(ackAt > 0, 'goLive runs after the ack');
      assert.deepEqual(
        rx.lines.map((l) => l.type),
        ['socket', 'socket', 'end'],
      );
    });
    assert.ok(liveAt >= ackAt && ackAt > 0);
    const conn = await rx.conn;
    if (!conn.readableEnded) await once(conn, 'end');
    assert.deepEqual(rx.lines, [{ type: 'socket', ...a.item.meta }, { type: 'socket', ...b.item.meta }, { type: 'end', count: 2 }, { type: 'live' }]);
    // goLive left them frozen: closing them is silent.
    closeFd(a.item.fd);
    closeFd(b.item.fd);
    assert.equal(await seesAnything(a.peerSide, 200), false);
  });

  it('fails with DELIVERY and never goes live when the receiver closes before acking', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const path = sockPath();
    await rawReceiver(path, (msg, conn) => {
      if (msg.type === 'end') conn.destroy();
    });
    let wentLive = false;
    await assert.rejects(
      deliver(path, [c.item], () => {
        wentLive = true;
      }),
      (err) => assertDelivery(err, /closed|ECONNRESET|EPIPE/),
    );
    assert.equal(wentLive, false);
    assert.ok(isRepairing(c.item.fd));
    // Still frozen: the connection vanishes without the peer hearing a thing.
    closeFd(c.item.fd);
    assert.equal(await seesAnything(c.peerSide, 300), false);
  });

  it('times out with DELIVERY and sends abort to a receiver that never acks', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const path = sockPath();
    const rx = await rawReceiver(path, () => undefined);
    let wentLive = false;
    const t0 = Date.now();
    await assert.rejects(
      deliver(
        path,
        [c.item],
        () => {
          wentLive = true;
        },
        { timeoutMs: 300 },
      ),
      (err) => assertDelivery(err, /timed out/),
    );
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(wentLive, false);
    const conn = await rx.conn;
    if (!conn.readableEnded) await once(conn, 'end');
    assert.deepEqual(
      rx.lines.map((l) => l.type),
      ['socket', 'end', 'abort'],
    );
    assert.match(String(rx.lines[2].reason), /timed out/);
  });

  it('fails with DELIVERY at once when nobody listens on the path', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const missing = sockPath();
    let t0 = Date.now();
    await assert.rejects(
      deliver(missing, [c.item], () => assert.fail('goLive')),
      (err) => assertDelivery(err, /nobody listens on .*ENOENT/),
    );
    assert.ok(Date.now() - t0 < 500);

    // A stale socket file: bound once, its listener gone.
    const stale = sockPath();
    const sun = N.pinned(110);
    sun.buf.writeUInt16LE(N.AF_UNIX, 0);
    sun.buf.write(stale, 2);
    const ufd = N.socket(N.AF_UNIX, N.SOCK_STREAM | N.SOCK_CLOEXEC, 0);
    fds.add(ufd);
    N.bind(ufd, sun, 2 + Buffer.byteLength(stale) + 1);
    closeFd(ufd);
    t0 = Date.now();
    await assert.rejects(
      deliver(stale, [c.item], () => assert.fail('goLive')),
      (err) => assertDelivery(err, /nobody listens on .*ECONNREFUSED/),
    );
    assert.ok(Date.now() - t0 < 500);

    // A receiver replaces the stale file.
    await listenReceiver(stale);

    await assert.rejects(
      deliver(join(tmpdir(), 'x'.repeat(120)), [c.item], () => assert.fail('goLive')),
      (err) => err instanceof SoccrError && err.kind === 'BAD_REQUEST',
    );
    assert.ok(isRepairing(c.item.fd));
  });

  it('hands over 50 connections in one batch', async () => {
    const peer = await tcpServer();
    const conns: Frozen[] = [];
    for (let i = 0; i < 50; i++) conns.push(await frozenConnection(peer, i));
    const path = sockPath();
    const receiver = await listenReceiver(path);
    const sockets: DeliveredSocket[] = [];
    receiver.on('socket', (socket, meta) => sockets.push({ socket: track(socket), meta }));
    const batch = once(receiver, 'batch') as Promise<[DeliveredSocket[]]>;
    let wentLive = false;
    await deliver(
      path,
      conns.map((c) => c.item),
      () => {
        assert.equal(sockets.length, 0);
        for (const c of conns) assert.equal(references(c.item.fd), 2);
        for (const c of conns) resume(c.frozen);
        wentLive = true;
      },
    );
    assert.ok(wentLive);
    for (const c of conns) closeFd(c.item.fd);
    const [got] = await batch;
    assert.equal(got.length, 50);
    assert.deepEqual(
      got.map((d) => d.meta),
      conns.map((c) => c.item.meta),
    );
    assert.deepEqual(
      sockets.map((d) => d.meta.index),
      [...Array(50).keys()],
    );
    await Promise.all(
      got.map(async (d, i) => {
        const c = conns[i];
        assert.equal(d.socket.localPort, c.item.meta.local.port);
        c.peerSide.write(`srv-${String(i).padStart(2, '0')}`);
        assert.equal(await readExactly(d.socket, 6), `srv-${String(i).padStart(2, '0')}`);
        d.socket.write(`cli-${String(i).padStart(2, '0')}`);
        assert.equal(await readExactly(c.peerSide, 6), `cli-${String(i).padStart(2, '0')}`);
      }),
    );
  });

  it('waits out a receiver too slow to read (EAGAIN) without blocking the event loop', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    // The same socket 2000 times: far more than a Unix socket buffers, so sending must wait.
    const items: DeliveryItem[] = Array.from({ length: 2000 }, (_, i) => ({ fd: c.item.fd, meta: { ...c.item.meta, id: `conn-${i}`, index: i } }));
    const path = sockPath();
    const server = net.createServer({ pauseOnConnect: true });
    servers.add(server);
    let count = 0;
    let buf = '';
    server.on('connection', (conn) => {
      track(conn);
      setTimeout(() => conn.resume(), 300); // Node reads with read(2): the fds are dropped, the lines kept
      conn.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const msg = JSON.parse(buf.slice(0, nl)) as { type: string; index?: number; count?: number };
          buf = buf.slice(nl + 1);
          if (msg.type === 'socket') assert.equal(msg.index, count++);
          if (msg.type === 'end') conn.write(`${JSON.stringify({ type: 'ack', count: msg.count })}\n`);
        }
      });
    });
    server.listen(path);
    await once(server, 'listening');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const t0 = Date.now();
    try {
      await deliver(path, items, () => undefined);
    } finally {
      clearInterval(ticker);
    }
    assert.equal(count, 2000);
    assert.ok(Date.now() - t0 >= 290, 'the sender had to wait for the receiver');
    assert.ok(ticks >= 15, `the event loop kept running while the sender waited (${ticks} ticks)`);
  });

  it('aborts when goLive throws: the receiver closes what it got and reports it', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const path = sockPath();
    const receiver = await listenReceiver(path);
    receiver.on('socket', () => assert.fail('no socket may be emitted'));
    const failed = once(receiver, 'error') as Promise<[HandoverError]>;
    await assert.rejects(
      deliver(path, [c.item], () => {
        throw new Error('repair off refused');
      }),
      /repair off refused/,
    );
    const [err] = await failed;
    assert.ok(err instanceof HandoverError);
    assert.match(err.message, /aborted.*going live failed: repair off refused/);
    assert.equal(err.fdsClosed, 1);
    assert.equal(references(c.item.fd), 1, "the receiver's descriptor is closed");
    closeFd(c.item.fd);
    assert.equal(await seesAnything(c.peerSide, 300), false);
  });

  it('refuses a sender that breaks the protocol, telling it why', async () => {
    const path = sockPath();
    const receiver = await listenReceiver(path);
    const failed = once(receiver, 'error') as Promise<[HandoverError]>;
    const sender = track(net.connect(path));
    const addr = { family: 'ipv4', ip: '127.0.0.1', port: 1 };
    sender.write(`${JSON.stringify({ type: 'socket', id: 'x', session: 's', index: 0, local: addr, remote: addr, state: 'ESTABLISHED' })}\n`);
    let answer = '';
    sender.on('data', (d: Buffer) => (answer += d.toString()));
    const [err] = await failed;
    assert.match(err.message, /without a file descriptor/);
    if (!sender.readableEnded) await once(sender, 'end');
    assert.equal((JSON.parse(answer) as { type: string }).type, 'abort');
  });

  it('checks who hands it descriptors (SO_PEERCRED): a sender of another uid is refused unread, its fds never installed here', async function () {
    // The default: only root (soccrd) may hand over. A real sender run as uid 65534, on a socket file it may open.
    const path = sockPath();
    const receiver = await SocketReceiver.listen(path, { mode: 0o666 });
    receivers.add(receiver);
    const failed = once(receiver, 'error') as Promise<[HandoverError]>;
    let emitted = 0;
    receiver.on('socket', () => emitted++);
    const addr = { family: 'ipv4', ip: '127.0.0.1', port: 1 };
    const script = `const c = require('net').connect(process.argv[1], () => c.write(process.argv[2])); c.on('data', (d) => process.stdout.write(d)); c.on('close', () => process.exit(0)); c.on('error', (e) => { console.error(e.message); process.exit(3); });`;
    const line = `${JSON.stringify({ type: 'socket', id: 'x', session: 's', index: 0, local: addr, remote: addr, state: 'ESTABLISHED' })}\n`;
    const child = execFile(process.execPath, ['-e', script, path, line], { uid: NOBODY, gid: NOBODY, cwd: '/', timeout: 10_000 });
    let childOut = '';
    child.stdout?.on('data', (d: Buffer) => (childOut += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (childOut += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code === 3 && childOut.includes('EACCES')) {
      if (this.test) this.test.title += ` (skipped: uid ${NOBODY} cannot reach ${path})`;
      this.skip();
    }
    const [err] = await failed;
    assert.match(err.message, new RegExp(`the sender runs as uid ${NOBODY}, not uid 0 \\(expectUid\\): connection closed unread`));
    assert.equal(err.fdsClosed, 0);
    assert.equal(emitted, 0);
    assert.doesNotMatch(childOut, /"type"/, 'the sender got no answer (the connection closed: EOF or EPIPE)');

    // A sender with a real descriptor, refused by uid (this test runs as root; expectUid 4242): the
    // descriptor in flight is dropped with the connection, never installed in this process.
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const path2 = sockPath();
    const strict = await SocketReceiver.listen(path2, { expectUid: 4242 });
    receivers.add(strict);
    const refused = once(strict, 'error') as Promise<[HandoverError]>;
    let wentLive = false;
    await assert.rejects(
      deliver(
        path2,
        [c.item],
        () => {
          wentLive = true;
        },
        { timeoutMs: 5000 },
      ),
      (e: unknown) => assertDelivery(e, /./),
    );
    const [err2] = await refused;
    assert.match(err2.message, /the sender runs as uid 0, not uid 4242/);
    assert.equal(wentLive, false);
    assert.equal(references(c.item.fd), 1, 'only the sender holds the socket');
    assert.ok(isRepairing(c.item.fd), 'still frozen');
    assert.equal(await seesAnything(c.peerSide, 300), false);

    // expectUid null: any sender the file lets in.
    const path3 = sockPath();
    const open = await SocketReceiver.listen(path3, { expectUid: null });
    receivers.add(open);
    const got = once(open, 'batch') as Promise<[DeliveredSocket[]]>;
    await deliver(path3, [c.item], () => resume(c.frozen));
    const [batch] = await got;
    for (const d of batch) track(d.socket);
    assert.equal(batch.length, 1);
  });

  it('closes and reports a descriptor that is not a TCP socket, and hands nothing of that hand-over out', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 0);
    const udp = N.socket(N.AF_INET, N.SOCK_DGRAM | N.SOCK_CLOEXEC, 0);
    fds.add(udp);
    const unix = N.socket(N.AF_UNIX, N.SOCK_STREAM | N.SOCK_CLOEXEC, 0);
    fds.add(unix);
    const meta = (i: number): DeliveryItem['meta'] => ({ ...c.item.meta, id: `conn-${i}`, index: i });
    for (const [wrong, what] of [
      [udp, /a socket of type 2 and protocol 17, not TCP/],
      [unix, /a socket of address family 1, not IPv4 or IPv6/],
    ] as const) {
      const path = sockPath();
      const receiver = await listenReceiver(path);
      const failed = once(receiver, 'error') as Promise<[HandoverError]>;
      let emitted = 0;
      receiver.on('socket', () => emitted++);
      let wentLive = false;
      // A good connection first, then the wrong descriptor: the whole hand-over fails.
      await assert.rejects(
        deliver(
          path,
          [c.item, { fd: wrong, meta: meta(1) }],
          () => {
            wentLive = true;
          },
          { timeoutMs: 5000 },
        ),
        (e: unknown) => assertDelivery(e, /conn-1.*not (TCP|IPv4)/),
      );
      const [err] = await failed;
      assert.match(err.message, what);
      assert.equal(err.fdsClosed, 2, 'both received descriptors closed');
      assert.equal(emitted, 0);
      assert.equal(wentLive, false);
      assert.equal(references(wrong), 1, "the receiver's copy is closed");
      assert.equal(references(c.item.fd), 1, "the receiver's copy of the good one too");
      assert.ok(isRepairing(c.item.fd), 'the connection is still frozen at the sender');
    }
    assert.equal(await seesAnything(c.peerSide, 300), false);
  });

  it('receiveOnce resolves with the live connections of one hand-over', async () => {
    const peer = await tcpServer();
    const c = await frozenConnection(peer, 7);
    const path = sockPath();
    const received = receiveOnce(path, 5000);
    // receiveOnce starts listening asynchronously.
    const deadline = Date.now() + 5000;
    while (!existsSync(path)) {
      if (Date.now() > deadline) throw new Error('receiveOnce never listened');
      await sleep(2);
    }
    await deliver(path, [c.item], () => resume(c.frozen));
    closeFd(c.item.fd);
    const got = await received;
    for (const d of got) track(d.socket);
    assert.equal(got.length, 1);
    assert.equal(got[0].meta.index, 7);
    assert.equal(existsSync(path), false, 'the socket file is removed');
    got[0].socket.write('ping');
    assert.equal(await readExactly(c.peerSide, 4), 'ping');
  });
});
