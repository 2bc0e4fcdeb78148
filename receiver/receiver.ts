// The receiving end of soccrd's hand-over (docs/handover.md), for Node programs: listens on a Unix
// stream socket, takes the restored connections' fds as they arrive (still in TCP repair mode, so left
// untouched), acknowledges the whole batch, and only once soccrd says they are live wraps each fd in a
// net.Socket and emits it (a listening socket of a hand-off is emitted as a handle for net.Server). A hand-over that aborts or breaks off before "live" has its fds closed, which
// in repair mode is silent: the connections vanish without FIN or RST.
//
// Who hands connections over is checked first: the sender's uid (SO_PEERCRED of the accepted
// connection) must be `expectUid` (default 0: soccrd runs as root), else the connection is closed
// unread, and no fd it carried is ever installed here. Each fd received must be a TCP socket (SO_DOMAIN
// AF_INET/AF_INET6, SO_TYPE SOCK_STREAM, SO_PROTOCOL IPPROTO_TCP): anything else fails the hand-over,
// every fd of it closed and the failure reported, none handed out.
//
// The fds are read with recvmsg on the accepted connection's own descriptor (Node cannot receive
// SCM_RIGHTS on a stream socket); the connection is accepted paused so that Node never reads from it,
// and is polled with MSG_DONTWAIT on a short timer, so the event loop is never blocked.
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import type { DeliveryMeta } from '../daemon/custody/delivery';
import * as N from '../daemon/kernel/native';
import { claimSocketPath, restrictSocketFile } from '../daemon/kernel/socket-file';
import type { SocketAddress } from '../protocol/address';
import { errorMessage } from '../protocol/errors';

/** What soccrd tells about each delivered connection (the sender's DeliveryMeta). */
export type DeliveredMeta = DeliveryMeta;

export interface DeliveredSocket {
  socket: net.Socket;
  meta: DeliveredMeta;
}

/**
 * A listening socket handed off (its state LISTEN): a handle a net.Server takes as it is,
 * `server.listen(handle)` (or `server.listen({ fd: handle.fd })`). The connections that waited in its
 * accept queue during the hand-off are accepted by that server like any later one.
 */
export interface DeliveredListener {
  handle: { fd: number };
  meta: DeliveredMeta;
}

export interface ReceiverOptions {
  /** Permissions of the socket file (default 0o600: only this user may hand connections over). */
  mode?: number;
  /** Bound on one hand-over, from the connection being accepted to "live", in ms (default 30 000). */
  timeoutMs?: number;
  /**
   * The uid the sender must run as (SO_PEERCRED), default 0: soccrd runs as root. null: any sender the
   * socket file's permissions let connect (e.g. a test or a daemon run as another user).
   */
  expectUid?: number | null;
}

/** A hand-over that failed on this side; its fds have been closed. */
export class HandoverError extends Error {
  /** the socket path the hand-over came in on */
  readonly path: string;
  /** how many fds had been received (and were closed) */
  readonly fdsClosed: number;
  constructor(path: string, message: string, fdsClosed: number) {
    super(message);
    this.name = 'HandoverError';
    this.path = path;
    this.fdsClosed = fdsClosed;
  }
}

export const DEFAULT_RECEIVE_TIMEOUT_MS = 30_000;
const MAX_UNIX_PATH = 107;
const MAX_LINE = 64 * 1024;
const POLL_MS = 1;
/** recvmsg calls per poll at most: a burst is drained quickly, but never holds the event loop long. */
const READS_PER_POLL = 256;
const { EAGAIN, EINTR } = osConstants.errno;

// One receive buffer for every connection: each read is copied out before the next call.
let recvBuf: N.PinnedBuffer | undefined;
function receiveBuffer(): N.PinnedBuffer {
  recvBuf ??= N.pinned(MAX_LINE);
  return recvBuf;
}

/** The part of Node's internal stream handle this module uses: its file descriptor. */
interface StreamHandle {
  readonly fd?: number;
}
interface WithHandle {
  readonly _handle?: StreamHandle | null;
}

function fdOf(sock: net.Socket): number {
  const fd = (sock as unknown as WithHandle)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('accepted connection has no file descriptor');
  return fd;
}

function errnoName(errno: number): string {
  return new N.SyscallError('', errno).code;
}

function isAddress(a: unknown): a is SocketAddress {
  if (typeof a !== 'object' || a === null) return false;
  const x = a as Record<string, unknown>;
  return (
    (x.family === 'ipv4' || x.family === 'ipv6') &&
    typeof x.ip === 'string' &&
    net.isIP(x.ip) !== 0 &&
    typeof x.port === 'number' &&
    Number.isInteger(x.port) &&
    x.port >= 0 &&
    x.port <= 65535
  );
}

/** The metadata of a "socket" message, or why it is not acceptable. */
function parseMeta(m: Record<string, unknown>): DeliveredMeta | string {
  if (typeof m.id !== 'string') return 'id is not a string';
  if (typeof m.session !== 'string') return 'session is not a string';
  if (typeof m.index !== 'number' || !Number.isInteger(m.index) || m.index < 0) return 'index is not a non-negative integer';
  if (!isAddress(m.local)) return 'local address is malformed';
  if (!isAddress(m.remote)) return 'remote address is malformed';
  if (typeof m.state !== 'string') return 'state is not a string';
  // An IPv6 link-local address's interface comes along; anything else in it does not.
  const addr = (a: SocketAddress): SocketAddress =>
    typeof a.scope === 'string' ? { family: a.family, ip: a.ip, port: a.port, scope: a.scope } : { family: a.family, ip: a.ip, port: a.port };
  return { id: m.id, session: m.session, index: m.index, local: addr(m.local), remote: addr(m.remote), state: m.state };
}

/** Why `fd` is not a TCP socket (what it is instead), or undefined if it is one. */
export function notTcpSocket(fd: number): string | undefined {
  let domain: number;
  let type: number;
  let protocol: number;
  try {
    domain = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.DOMAIN);
    type = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.TYPE);
    protocol = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.PROTOCOL);
  } catch (err) {
    return err instanceof N.SyscallError && err.code === 'ENOTSOCK' ? 'not a socket' : `not inspectable (${errorMessage(err)})`;
  }
  if (domain !== N.AF_INET && domain !== N.AF_INET6) return `a socket of address family ${domain}, not IPv4 or IPv6`;
  if (type !== N.SOCK_STREAM || protocol !== N.IPPROTO_TCP) return `a socket of type ${type} and protocol ${protocol}, not TCP`;
  return undefined;
}

const checkBatch = new N.KernelBatch(64);

/**
 * notTcpSocket for many fds, their kernel calls in one batch (a hand-off of a thousand sockets would
 * otherwise make three thousand calls while its old owner is stopped): per fd, why it is not a TCP
 * socket, or undefined.
 */
export function notTcpSockets(fds: readonly number[]): Array<string | undefined> {
  const b = checkBatch.reset();
  const ops = fds.map((fd, i) => {
    b.group = i;
    return [b.getInt(fd, N.SOL_SOCKET, N.SO.DOMAIN), b.getInt(fd, N.SOL_SOCKET, N.SO.TYPE), b.getInt(fd, N.SOL_SOCKET, N.SO.PROTOCOL)];
  });
  b.run();
  return fds.map((fd, i) => (ops[i].every((op) => b.ok(op)) ? judge(b.int(ops[i][0]), b.int(ops[i][1]), b.int(ops[i][2])) : notTcpSocket(fd)));
}

function judge(domain: number, type: number, protocol: number): string | undefined {
  if (domain !== N.AF_INET && domain !== N.AF_INET6) return `a socket of address family ${domain}, not IPv4 or IPv6`;
  if (type !== N.SOCK_STREAM || protocol !== N.IPPROTO_TCP) return `a socket of type ${type} and protocol ${protocol}, not TCP`;
  return undefined;
}

const lineOf = (msg: object): Buffer => Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');

type Phase = 'receiving' | 'acked' | 'finished';

/** One hand-over connection, from accept to "live" or failure. */
class Incoming {
  private readonly owner: SocketReceiver;
  private readonly conn: net.Socket;
  private readonly fd: number;
  private readonly deadline: number;
  private phase: Phase = 'receiving';
  private timer: NodeJS.Timeout | undefined;
  private pending: Buffer = Buffer.alloc(0);
  /** fds received and not yet paired with their "socket" line */
  private fdQueue: number[] = [];
  private items: Array<{ fd: number; meta: DeliveredMeta }> = [];
  private sawAnything = false;
  private outbox: Buffer = Buffer.alloc(0);
  private readonly outBuf: N.PinnedBuffer;

  constructor(
    owner: SocketReceiver,
    conn: net.Socket,
    timeoutMs: number,
    private readonly expectUid: number | null,
  ) {
    this.owner = owner;
    this.conn = conn;
    this.fd = fdOf(conn);
    this.deadline = Date.now() + timeoutMs;
    this.outBuf = N.pinned(1024);
    conn.on('error', () => {
      /* never read or written through Node: nothing to report */
    });
  }

  start(): void {
    // Before a single read: fds a stranger sent are never installed in this process.
    if (this.expectUid !== null) {
      let uid: number;
      try {
        uid = N.peerCredentials(this.fd).uid;
      } catch (err) {
        this.fail(`cannot read the sender's credentials (SO_PEERCRED): ${errorMessage(err)}`, false);
        return;
      }
      if (uid !== this.expectUid) {
        this.fail(`the sender runs as uid ${uid}, not uid ${this.expectUid} (expectUid): connection closed unread`, false);
        return;
      }
    }
    this.poll();
  }

  private get finished(): boolean {
    return this.phase === 'finished';
  }

  private schedule(): void {
    if (!this.finished) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  private poll(): void {
    this.timer = undefined;
    if (this.finished) return;
    const buf = receiveBuffer();
    for (let i = 0; i < READS_PER_POLL && !this.finished; i++) {
      const r = N.tryRecvFds(this.fd, buf, buf.buf.length, N.MSG_DONTWAIT);
      if (r.fds.length > 0) {
        this.sawAnything = true;
        this.fdQueue.push(...r.fds);
      }
      if (r.length > 0) {
        this.sawAnything = true;
        this.pending = this.pending.length ? Buffer.concat([this.pending, buf.buf.subarray(0, r.length)]) : Buffer.from(buf.buf.subarray(0, r.length));
        this.takeLines();
        continue;
      }
      if (r.length === 0) {
        // A connection closed without a byte (a liveness probe, say) is no hand-over: nothing to report.
        this.fail('the sender closed the connection before "live"', false, !this.sawAnything);
        return;
      }
      const errno = -r.length;
      if (errno === EAGAIN || errno === EINTR) break;
      this.fail(`reading the hand-over connection: ${errnoName(errno)}`, false);
      return;
    }
    if (this.finished) return;
    if (!this.flush()) return;
    if (Date.now() >= this.deadline) {
      this.fail(`hand-over not completed within the timeout (${this.items.length} connections received)`, true);
      return;
    }
    this.schedule();
  }

  private takeLines(): void {
    for (;;) {
      if (this.finished) return;
      const nl = this.pending.indexOf(0x0a);
      if (nl < 0) break;
      const text = this.pending.subarray(0, nl).toString('utf8');
      this.pending = this.pending.subarray(nl + 1);
      this.handle(text);
    }
    if (!this.finished && this.pending.length > MAX_LINE) this.fail(`a message longer than ${MAX_LINE} bytes`, true);
  }

  private handle(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.fail(`not a JSON message: ${JSON.stringify(text.slice(0, 100))}`, true);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.fail('a message that is not a JSON object', true);
      return;
    }
    const msg = parsed as Record<string, unknown>;
    switch (msg.type) {
      case 'socket': {
        if (this.phase !== 'receiving') {
          this.fail('a "socket" message after "end"', true);
          return;
        }
        const meta = parseMeta(msg);
        if (typeof meta === 'string') {
          this.fail(`"socket" message ${this.items.length}: ${meta}`, true);
          return;
        }
        const fd = this.fdQueue.shift();
        if (fd === undefined) {
          this.fail(`"socket" message ${this.items.length} (${meta.id}) came without a file descriptor`, true);
          return;
        }
        // What each fd is: checked at "end" for all of them at once, before the acknowledgement.
        this.items.push({ fd, meta });
        return;
      }
      case 'end': {
        if (this.phase !== 'receiving') {
          this.fail('a second "end"', true);
          return;
        }
        if (msg.count !== this.items.length) {
          this.fail(`"end" announces ${String(msg.count)} connections, ${this.items.length} arrived`, true);
          return;
        }
        if (this.fdQueue.length > 0) {
          this.fail(`${this.fdQueue.length} file descriptors more than "socket" messages`, true);
          return;
        }
        {
          const wrong = notTcpSockets(this.items.map((it) => it.fd));
          const bad = wrong.findIndex((w) => w !== undefined);
          if (bad >= 0) {
            this.fail(`"socket" message ${bad} (${this.items[bad].meta.id}) came with a file descriptor that is ${wrong[bad] ?? ''}`, true);
            return;
          }
        }
        this.phase = 'acked';
        this.queue(lineOf({ type: 'ack', count: this.items.length }));
        this.flush();
        return;
      }
      case 'live':
        if (this.phase !== 'acked') this.fail('"live" before the acknowledgement', true);
        else this.goLive();
        return;
      case 'abort':
        // "again": the same sockets follow on a new hand-over connection (a hand-off whose old owner
        // changed its sockets before it was stopped): nothing failed, nothing to report.
        this.fail(`the sender aborted the hand-over: ${typeof msg.reason === 'string' ? msg.reason : 'no reason given'}`, false, msg.again === true);
        return;
      default:
        this.fail(`unknown message type ${JSON.stringify(msg.type)}`, true);
    }
  }

  private queue(bytes: Buffer): void {
    this.outbox = this.outbox.length ? Buffer.concat([this.outbox, bytes]) : bytes;
  }

  /** Sends what is queued, as far as the socket takes it; false if the connection failed. */
  private flush(): boolean {
    while (this.outbox.length > 0 && !this.finished) {
      const len = Math.min(this.outbox.length, this.outBuf.buf.length);
      this.outbox.copy(this.outBuf.buf, 0, 0, len);
      const n = N.trySend(this.fd, this.outBuf, 0, len, N.MSG_DONTWAIT);
      if (n > 0) {
        this.outbox = this.outbox.subarray(n);
        continue;
      }
      if (n < 0 && (-n === EAGAIN || -n === EINTR)) return true; // next poll
      this.fail(`answering the sender: ${n < 0 ? errnoName(-n) : 'no progress'}`, false);
      return false;
    }
    return !this.finished;
  }

  /** Stops polling and closes the hand-over connection (never its fds). */
  private finish(): void {
    this.phase = 'finished';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.owner.forget(this);
    this.conn.destroy();
  }

  private goLive(): void {
    const items = this.items;
    this.items = [];
    this.finish();
    const batch: DeliveredSocket[] = [];
    const listeners: DeliveredListener[] = [];
    const broken: string[] = [];
    for (const { fd, meta } of items) {
      if (meta.state === 'LISTEN') {
        // Left as an fd: whoever listens on it wraps it (a net.Server), so nothing accepts before then.
        listeners.push({ handle: { fd }, meta });
        continue;
      }
      try {
        batch.push({ socket: new net.Socket({ fd, readable: true, writable: true }), meta });
      } catch (err) {
        N.closeQuietly(fd);
        broken.push(`${meta.id}: ${errorMessage(err)}`);
      }
    }
    for (const l of listeners) this.owner.emit('listener', l.handle, l.meta);
    for (const d of batch) this.owner.emit('socket', d.socket, d.meta);
    this.owner.emit('batch', batch, listeners);
    if (broken.length > 0) {
      this.owner.emit('error', new HandoverError(this.owner.path, `live connections that could not be wrapped, closed: ${broken.join('; ')}`, broken.length));
    }
  }

  /**
   * Ends the hand-over unfinished: every fd received is closed (silently, they are in repair mode), the
   * sender is told why when `tellSender`, and the failure is reported unless `quiet`.
   */
  fail(reason: string, tellSender: boolean, quiet = false): void {
    if (this.finished) return;
    const fds = [...this.items.map((i) => i.fd), ...this.fdQueue];
    this.items = [];
    this.fdQueue = [];
    for (const fd of fds) N.closeQuietly(fd);
    if (tellSender) {
      const bytes = lineOf({ type: 'abort', reason: reason.slice(0, 400) });
      if (bytes.length <= this.outBuf.buf.length && this.outbox.length === 0) {
        bytes.copy(this.outBuf.buf);
        N.trySend(this.fd, this.outBuf, 0, bytes.length, N.MSG_DONTWAIT);
      }
    }
    this.finish();
    if (!quiet) this.owner.emit('error', new HandoverError(this.owner.path, `hand-over on ${this.owner.path} failed: ${reason}`, fds.length));
  }
}

/** SocketReceiver's events and their arguments. */
export interface ReceiverEvents {
  socket: [socket: net.Socket, meta: DeliveredMeta];
  /** a listening socket (hand-off): pass the handle to net.Server's listen */
  listener: [handle: { fd: number }, meta: DeliveredMeta];
  /** a hand-over's connections, and its listening sockets (none but from a hand-off with listeners) */
  batch: [batch: DeliveredSocket[], listeners: DeliveredListener[]];
  error: [err: Error];
}

/**
 * Listens for hand-overs on a Unix stream socket. Emits, per completed hand-over, 'socket' for each
 * connection (in the order sent) and then 'batch' with all of them; 'error' (a HandoverError) for a
 * hand-over that failed, whose fds were closed. As with any EventEmitter, an 'error' without a listener
 * is thrown: listen for it.
 */
export class SocketReceiver extends EventEmitter<ReceiverEvents> {
  readonly path: string;
  private readonly server: net.Server;
  private readonly timeoutMs: number;
  private readonly expectUid: number | null;
  private readonly active = new Set<Incoming>();
  private inode = -1;
  private closing: Promise<void> | undefined;

  private constructor(path: string, timeoutMs: number, expectUid: number | null) {
    super();
    this.path = path;
    this.timeoutMs = timeoutMs;
    this.expectUid = expectUid;
    this.server = net.createServer({ pauseOnConnect: true }, (conn) => this.accept(conn));
  }

  /** Starts listening on `path`: a stale socket file there is replaced, a live listener is an error. */
  static async listen(path: string, opts: ReceiverOptions = {}): Promise<SocketReceiver> {
    const len = Buffer.byteLength(path);
    if (len === 0 || len > MAX_UNIX_PATH) throw new RangeError(`a Unix socket path must be 1 to ${MAX_UNIX_PATH} bytes: ${path}`);
    const r = new SocketReceiver(path, opts.timeoutMs ?? DEFAULT_RECEIVE_TIMEOUT_MS, opts.expectUid === undefined ? 0 : opts.expectUid);
    await claimSocketPath(path);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(path, () => {
        r.server.off('error', reject);
        resolve();
      });
    });
    r.server.on('error', (err) => r.emit('error', err));
    try {
      restrictSocketFile(path, opts.mode ?? 0o600);
      r.inode = (await fsp.lstat(path)).ino;
    } catch (err) {
      await r.close();
      throw err;
    }
    return r;
  }

  private accept(conn: net.Socket): void {
    if (this.closing) {
      conn.destroy();
      return;
    }
    let h: Incoming;
    try {
      h = new Incoming(this, conn, this.timeoutMs, this.expectUid);
    } catch (err) {
      conn.destroy();
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.active.add(h);
    h.start();
  }

  /** @internal called by a hand-over once it is over */
  forget(h: Incoming): void {
    this.active.delete(h);
  }

  /** Stops listening, abandons unfinished hand-overs (their fds closed, nothing emitted) and removes the socket file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const h of [...this.active]) h.fail('the receiver is closing', true, true);
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      // Node removes the file itself on close; make sure, but never remove another listener's file.
      try {
        if (this.inode >= 0 && (await fsp.lstat(this.path)).ino === this.inode) await fsp.unlink(this.path);
      } catch {
        /* already gone */
      }
    })();
    return this.closing;
  }
}

/**
 * Listens on `path` for a single hand-over and resolves with its connections (live), or rejects on the
 * first failed hand-over or after `timeoutMs`. The listener is closed either way. Listening sockets of a
 * hand-off: receiveHandoffOnce.
 */
export async function receiveOnce(path: string, timeoutMs: number, opts: ReceiverOptions = {}): Promise<DeliveredSocket[]> {
  return (await receiveHandoffOnce(path, timeoutMs, opts)).sockets;
}

/** receiveOnce, with the listening sockets of a hand-off too (to give to a net.Server). */
export async function receiveHandoffOnce(
  path: string,
  timeoutMs: number,
  opts: ReceiverOptions = {},
): Promise<{ sockets: DeliveredSocket[]; listeners: DeliveredListener[] }> {
  const r = await SocketReceiver.listen(path, { timeoutMs, ...opts });
  try {
    return await new Promise<{ sockets: DeliveredSocket[]; listeners: DeliveredListener[] }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no hand-over on ${path} within ${timeoutMs} ms`)), timeoutMs);
      r.once('batch', (sockets, listeners) => {
        clearTimeout(t);
        resolve({ sockets, listeners });
      });
      r.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  } finally {
    r.on('error', () => {
      /* the outcome is settled: later failures have nobody to go to */
    });
    await r.close();
  }
}
