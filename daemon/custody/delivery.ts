// Hand-over of restored sockets to the process that will own them, over a Unix stream socket the
// receiver listens on (docs/handover.md describes the protocol for receivers in any language):
//
//   daemon -> receiver  {"type":"socket",...}\n   one message per connection, its fd attached (SCM_RIGHTS)
//   daemon -> receiver  {"type":"end","count":N}\n
//   receiver -> daemon  {"type":"ack","count":N}\n   once it holds all N fds
//   daemon              goLive(): TCP repair off on every socket
//   daemon -> receiver  {"type":"live"}\n            and the daemon closes
//
// Nothing goes live before its new owner holds it. Any failure before goLive ends with
// {"type":"abort","reason":...}\n (when it can still be sent) and a close: the receiver closes what it got,
// and since every socket is still in repair mode, the connections vanish without FIN or RST once the
// caller closes its own copies too.
//
// Every wait polls a non-blocking socket on a short timer, so the event loop is never blocked for more
// than one system call, and every wait is bounded by the hand-over's deadline.
//
// The path is resolved once and checked against the caller's rules before the connect, and the
// receiver's credentials after it (handover-target.ts): a refusal sends nothing, not even the abort line.
import { constants as osConstants } from 'node:os';
import * as N from '../kernel/native';
import { SoccrError, errorMessage, kernelError } from '../../protocol/errors';
import { SocketAddress } from '../../protocol/address';
import { HANDOVER_ACK_TIMEOUT_MS, HANDOVER_LIVE_LINE_MS } from '../../protocol/handover';
import { ANY_HANDOVER, HandoverRules, HandoverTarget, checkReceiver } from './handover-target';

/** What the receiver learns about one connection, besides its fd. */
export interface DeliveryMeta {
  /** the connection's id, unique within its session */
  id: string;
  /** the restore session the connection belongs to */
  session: string;
  /** position of the connection in the session (0-based) */
  index: number;
  local: SocketAddress;
  remote: SocketAddress;
  /** TCP state name: ESTABLISHED, FIN_WAIT1, CLOSE_WAIT, ... */
  state: string;
}

/** One connection to hand over: a socket still in TCP repair mode, and its description. */
export interface DeliveryItem {
  fd: number;
  meta: DeliveryMeta;
}

export interface DeliveryOptions {
  /**
   * Bound on the whole hand-over up to the receiver's acknowledgement (connecting, sending, waiting for
   * the ack), in milliseconds. Default HANDOVER_ACK_TIMEOUT_MS (10 000, protocol/handover.ts: clients
   * derive their Resume deadline from it).
   */
  timeoutMs?: number;
  /** Aborted: the hand-over stops at its next wait, as if it had timed out (the daemon is stopping). */
  signal?: AbortSignal;
  /**
   * SO_SNDBUFFORCE of the hand-over connection: room for every message at once, so that a large batch
   * never waits a poll interval for the receiver to drain it (a hand-off, whose owner is stopped
   * meanwhile). Best effort; default: the kernel's.
   */
  sendBufferBytes?: number;
  /**
   * Up to this many `socket` lines go in one sendmsg, their fds attached to its first byte (each fd
   * still arrives with or before its own line, as docs/handover.md promises). 1 (the default): one per
   * message. More saves a system call per socket on both sides (a hand-off's freeze), and needs a receiver
   * whose control buffer takes that many fds (MSG_CTRUNC otherwise: it refuses, nothing goes live). At
   * most MAX_FDS_PER_SEND.
   */
  fdsPerMessage?: number;
  /** Where the socket may be and who may receive (default: anywhere, anyone). */
  rules?: HandoverRules;
}

/**
 * Thrown by a `goLive` that finds the sockets it was to make live are no longer the ones to hand over (a
 * hand-off whose owner changed its sockets before it was stopped): the receiver is told to abort with
 * `"again":true`, as the same sockets follow on a new hand-over connection.
 */
export class HandOverAgain extends Error {}

/** The most fds one sendmsg of a hand-over carries: what the documented receivers' control buffers take. */
export const MAX_FDS_PER_SEND = 16;

export const DEFAULT_DELIVERY_TIMEOUT_MS = HANDOVER_ACK_TIMEOUT_MS;
/** Longest path a sockaddr_un takes, terminating NUL excluded. */
export const MAX_UNIX_PATH = 107;
/** Longest line accepted from the receiver. */
const MAX_REPLY_LINE = 4096;
/** Longest abort reason sent (longer ones are cut). */
const MAX_REASON = 400;
/** Interval between two polls of a socket that would block. */
const POLL_MS = 1;
/** Time allowed for the "live" line once the sockets are live, whatever is left of the deadline. */
const LIVE_LINE_GRACE_MS = HANDOVER_LIVE_LINE_MS;

const { EAGAIN, EINTR, ENOENT, ECONNREFUSED } = osConstants.errno;

const SOCKADDR_UN_LEN = 110; // sa_family_t + sun_path[108]
const unixAddr = N.pinned(SOCKADDR_UN_LEN);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errnoName(errno: number): string {
  return new N.SyscallError('', errno).code;
}

function encodeUnixPath(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0) throw new SoccrError('BAD_REQUEST', 'hand-over path is empty');
  if (bytes.includes(0)) throw new SoccrError('BAD_REQUEST', 'hand-over path contains a NUL byte');
  if (bytes.length > MAX_UNIX_PATH) {
    throw new SoccrError('BAD_REQUEST', `hand-over path is ${bytes.length} bytes, a Unix socket path must be under 108: ${path}`);
  }
  return bytes;
}

function validAddress(a: unknown): boolean {
  if (typeof a !== 'object' || a === null) return false;
  const x = a as Partial<SocketAddress>;
  return (
    (x.family === 'ipv4' || x.family === 'ipv6') &&
    typeof x.ip === 'string' &&
    Number.isInteger(x.port) &&
    (x.port as number) >= 0 &&
    (x.port as number) <= 65535
  );
}

function validateItem(item: DeliveryItem, i: number): void {
  const bad = (what: string): never => {
    throw new SoccrError('BAD_REQUEST', `hand-over item ${i}: ${what}`);
  };
  if (!Number.isInteger(item.fd) || item.fd < 0) bad(`fd ${item.fd} is not a file descriptor`);
  const m = item.meta;
  if (typeof m !== 'object' || m === null) bad('no metadata');
  if (typeof m.id !== 'string') bad('id is not a string');
  if (typeof m.session !== 'string') bad('session is not a string');
  if (!Number.isInteger(m.index) || m.index < 0) bad('index is not a non-negative integer');
  if (!validAddress(m.local)) bad('local address is malformed');
  if (!validAddress(m.remote)) bad('remote address is malformed');
  if (typeof m.state !== 'string' || m.state === '') bad('state is not a name');
}

const addr = (a: SocketAddress): SocketAddress => ({ family: a.family, ip: a.ip, port: a.port });

/** Lines made ahead of time (prepareSocketLines), by the very metadata object they were made of. */
const preparedLines = new WeakMap<DeliveryMeta, Buffer>();

/**
 * Makes the `socket` lines of these connections now, so that a hand-over of them later only sends
 * (a hand-off makes them before it stops the owner). Items must then carry these very objects, unchanged.
 */
export function prepareSocketLines(metas: readonly DeliveryMeta[]): void {
  for (const m of metas) preparedLines.set(m, makeSocketLine(m));
}

function socketLine(m: DeliveryMeta): Buffer {
  return preparedLines.get(m) ?? makeSocketLine(m);
}

function makeSocketLine(m: DeliveryMeta): Buffer {
  // Fields picked one by one: nothing else the caller's objects carry goes on the wire. JSON.stringify
  // escapes control characters, so a line never holds a raw newline.
  const msg = { type: 'socket', id: m.id, session: m.session, index: m.index, local: addr(m.local), remote: addr(m.remote), state: m.state };
  return Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');
}

const line = (msg: object): Buffer => Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');

/** The daemon's end of one hand-over connection. */
class HandoverConn {
  readonly fd: number;
  private closed = false;
  private connected = false;
  /** a line was sent in part: nothing else may go out before its rest (only abort-by-close then) */
  private midLine = false;
  private out: N.PinnedBuffer;
  private readonly inBuf: N.PinnedBuffer;
  private pending: Buffer = Buffer.alloc(0);
  /** aborted: every wait ends at once (dropped once the sockets are live: the "live" line still goes) */
  stopSignal: AbortSignal | undefined;

  constructor(fd: number, maxLine: number) {
    this.fd = fd;
    this.out = N.pinned(maxLine);
    this.inBuf = N.pinned(MAX_REPLY_LINE);
  }

  /** Connects to `path` (through `pathBytes`, the address that reaches it), retrying while the listener's backlog is full. */
  async connect(path: string, pathBytes: Buffer, deadline: number): Promise<void> {
    for (;;) {
      // The address buffer is shared by concurrent hand-overs: fill it right before each call.
      unixAddr.buf.fill(0);
      unixAddr.buf.writeUInt16LE(N.AF_UNIX, 0);
      pathBytes.copy(unixAddr.buf, 2);
      try {
        N.connect(this.fd, unixAddr, 2 + pathBytes.length + 1);
        this.connected = true;
        return;
      } catch (err) {
        if (!(err instanceof N.SyscallError)) throw err;
        if (err.errno === ENOENT || err.errno === ECONNREFUSED) {
          throw new SoccrError('DELIVERY', `nobody listens on ${path}: ${err.code}`, err);
        }
        if (err.errno !== EAGAIN && err.errno !== EINTR) {
          throw new SoccrError('DELIVERY', `cannot connect to ${path}: ${err.code}`, err);
        }
        // EAGAIN: the receiver's accept backlog is full.
        if (Date.now() >= deadline)
          throw new SoccrError('DELIVERY', `connecting to ${path}: the receiver accepts nothing (backlog full) within the timeout`, err);
        await this.pause(`connecting to ${path}`);
      }
    }
  }

  /** Sends one whole line (or several), `fd` (or `fds`) attached to its first byte; waits while the receiver is slow. */
  async sendLine(bytes: Buffer, fd: number | readonly number[], deadline: number, what: string): Promise<void> {
    const fds = typeof fd === 'number' ? (fd >= 0 ? [fd] : []) : fd;
    if (bytes.length > this.out.buf.length) this.out = N.pinned(bytes.length);
    let off = 0;
    while (off < bytes.length) {
      if (this.closed) throw new SoccrError('DELIVERY', `${what}: hand-over connection closed`);
      // The unsent rest of the line, from the start of this connection's own buffer.
      bytes.copy(this.out.buf, 0, off);
      const len = bytes.length - off;
      const n = off === 0 && fds.length > 0 ? N.trySendFds(this.fd, this.out, len, fds, N.MSG_DONTWAIT) : N.trySend(this.fd, this.out, 0, len, N.MSG_DONTWAIT);
      if (n > 0) {
        off += n;
        this.midLine = off < bytes.length;
        continue;
      }
      const errno = n < 0 ? -n : EAGAIN;
      if (errno !== EAGAIN && errno !== EINTR) {
        throw new SoccrError(
          'DELIVERY',
          `${what}: ${errnoName(errno)} (the receiver went away?)`,
          new N.SyscallError(fds.length > 0 && off === 0 ? 'sendmsg' : 'send', errno),
        );
      }
      if (Date.now() >= deadline) throw new SoccrError('DELIVERY', `${what}: the receiver takes no data (timed out)`);
      await this.pause(what);
    }
  }

  /** Waits for one line from the receiver. */
  async readLine(deadline: number, what: string): Promise<string> {
    for (;;) {
      const nl = this.pending.indexOf(0x0a);
      if (nl >= 0) {
        const text = this.pending.subarray(0, nl).toString('utf8');
        this.pending = this.pending.subarray(nl + 1);
        return text;
      }
      if (this.pending.length >= MAX_REPLY_LINE) throw new SoccrError('DELIVERY', `${what}: the receiver sent a line longer than ${MAX_REPLY_LINE} bytes`);
      const n = N.tryRecv(this.fd, this.inBuf, 0, MAX_REPLY_LINE - this.pending.length, N.MSG_DONTWAIT);
      if (n > 0) {
        this.pending = Buffer.concat([this.pending, this.inBuf.buf.subarray(0, n)]);
        continue;
      }
      if (n === 0) throw new SoccrError('DELIVERY', `${what}: the receiver closed the connection`);
      if (-n !== EAGAIN && -n !== EINTR) {
        throw new SoccrError('DELIVERY', `${what}: ${errnoName(-n)} (the receiver went away?)`, new N.SyscallError('recv', -n));
      }
      if (Date.now() >= deadline) throw new SoccrError('DELIVERY', `${what}: timed out`);
      await this.pause(what);
    }
  }

  /** One poll interval, unless the hand-over was told to stop. */
  private async pause(what: string): Promise<void> {
    if (this.stopSignal?.aborted) throw new SoccrError('DELIVERY', `${what}: stopped (the daemon is stopping)`);
    await sleep(POLL_MS);
  }

  /** Best effort, never waits: sends the abort line if it fits at once, then closes. `again`: the same sockets follow on a new connection. */
  abort(reason: string, again = false): void {
    if (this.closed) return;
    if (this.connected && !this.midLine) {
      const text = reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}...` : reason;
      const bytes = line(again ? { type: 'abort', reason: text, again: true } : { type: 'abort', reason: text });
      if (bytes.length <= this.out.buf.length) {
        bytes.copy(this.out.buf);
        // A partial abort line is no worse than none: the receiver treats both, and the close, alike.
        N.trySend(this.fd, this.out, 0, bytes.length, N.MSG_DONTWAIT);
      }
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    N.closeQuietly(this.fd);
  }
}

/**
 * Hands the sockets of `items` (all still in TCP repair mode) to the process listening on the Unix
 * stream socket `path`, then makes them live by calling `goLive` once, and only once, the receiver has
 * acknowledged holding every one of them.
 *
 * The daemon's own descriptors stay open: the caller closes them after this promise settles. After a
 * failure before goLive the sockets are still in repair mode, so closing them then makes the connections
 * vanish silently (the receiver closes its copies on abort).
 *
 * Rejects with SoccrError('BAD_REQUEST') for a path or item that cannot be sent (nothing was sent), and
 * SoccrError('DELIVERY') when the receiver is absent, refuses, goes away or is too slow; `goLive` has
 * not run then. If `goLive` (which may be async) throws, the receiver is told to abort (with
 * `"again":true` for a HandOverAgain) and its error is rethrown as is. A
 * DELIVERY error whose message starts with "connections are live" means goLive did run but the receiver
 * could not be told.
 *
 * `items` may be a function that takes them (a hand-off stops the owner and takes its sockets there):
 * it is called once the receiver is connected and checked, so that none of that falls in the freeze.
 * If it throws, the receiver is told to abort and its error is rethrown.
 */
export async function deliver(
  path: string,
  itemsOrTaken: DeliveryItem[] | (() => Promise<DeliveryItem[]>),
  goLive: () => void | Promise<void>,
  opts: DeliveryOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new SoccrError('BAD_REQUEST', `hand-over timeout ${timeoutMs} ms is not a positive number`);
  encodeUnixPath(path);
  const perSend = Math.max(1, Math.min(MAX_FDS_PER_SEND, Math.floor(opts.fdsPerMessage ?? 1)));
  const rules = opts.rules ?? ANY_HANDOVER;
  /** The sends: `perSend` lines at a time with their fds (one each by default). */
  const sendsOf = (items: DeliveryItem[]): Array<{ bytes: Buffer; fds: number[]; what: string }> => {
    items.forEach(validateItem);
    const lines = items.map((item) => socketLine(item.meta));
    const sends: Array<{ bytes: Buffer; fds: number[]; what: string }> = [];
    for (let i = 0; i < items.length; i += perSend) {
      const group = items.slice(i, i + perSend);
      const what = group.length === 1 ? `connection ${i} (${group[0].meta.id})` : `connections ${i}..${i + group.length - 1}`;
      sends.push({ bytes: perSend === 1 ? lines[i] : Buffer.concat(lines.slice(i, i + perSend)), fds: group.map((it) => it.fd), what });
    }
    return sends;
  };
  // Items given: checked before anything is connected. Items to be taken (a hand-off, whose owner is
  // stopped to take them): the receiver is connected and checked first, outside that freeze.
  const given = typeof itemsOrTaken === 'function' ? undefined : { items: itemsOrTaken, sends: sendsOf(itemsOrTaken) };
  const liveLine = line({ type: 'live' });
  const maxLine = (given?.sends ?? []).reduce((m, l) => Math.max(m, l.bytes.length), 4096);
  const deadline = Date.now() + timeoutMs;

  let fd: number;
  try {
    fd = N.socket(N.AF_UNIX, N.SOCK_STREAM | N.SOCK_CLOEXEC | N.SOCK_NONBLOCK, 0);
  } catch (err) {
    throw kernelError('creating the hand-over socket', err);
  }
  if (opts.sendBufferBytes) {
    try {
      N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.SNDBUFFORCE, opts.sendBufferBytes);
    } catch {
      // without CAP_NET_ADMIN the kernel's default: slower for large batches, same result
    }
  }
  const conn = new HandoverConn(fd, maxLine);
  conn.stopSignal = opts.signal;
  try {
    const target = HandoverTarget.open(path, rules);
    try {
      await conn.connect(path, Buffer.from(target.connectPath), deadline);
    } finally {
      target.close();
    }
  } catch (err) {
    // Not connected, or connected to a receiver never checked: nothing is sent.
    conn.close();
    throw err instanceof SoccrError ? err : new SoccrError('DELIVERY', `hand-over to ${path} failed: ${errorMessage(err)}`, err);
  }
  try {
    checkReceiver(conn.fd, path, rules);
  } catch (err) {
    conn.close();
    throw err;
  }
  try {
    let items = given?.items;
    let sends = given?.sends;
    if (!items || !sends) {
      items = await (itemsOrTaken as () => Promise<DeliveryItem[]>)();
      sends = sendsOf(items);
    }
    for (const x of sends) await conn.sendLine(x.bytes, x.fds, deadline, `sending ${x.what} to ${path}`);
    await conn.sendLine(line({ type: 'end', count: items.length }), -1, deadline, `sending the end of the hand-over to ${path}`);
    const reply = await conn.readLine(deadline, `waiting for the receiver's acknowledgement on ${path}`);
    checkAck(reply, items.length, path);
  } catch (err) {
    const failure = err instanceof SoccrError ? err : new SoccrError('DELIVERY', `hand-over to ${path} failed: ${errorMessage(err)}`, err);
    conn.abort(failure.message);
    throw failure;
  }

  try {
    await goLive();
  } catch (err) {
    conn.abort(err instanceof HandOverAgain ? err.message : `going live failed: ${errorMessage(err)}`, err instanceof HandOverAgain);
    throw err;
  }

  conn.stopSignal = undefined;
  try {
    await conn.sendLine(liveLine, -1, Math.max(deadline, Date.now() + LIVE_LINE_GRACE_MS), `telling ${path} the connections are live`);
  } catch (err) {
    throw new SoccrError('DELIVERY', `connections are live, but the receiver on ${path} could not be told: ${errorMessage(err)}`, err);
  } finally {
    conn.close();
  }
}

function checkAck(reply: string, count: number, path: string): void {
  let msg: unknown;
  try {
    msg = JSON.parse(reply);
  } catch {
    throw new SoccrError('DELIVERY', `the receiver on ${path} answered with something other than JSON: ${JSON.stringify(reply.slice(0, 200))}`);
  }
  const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { type?: unknown; count?: unknown; reason?: unknown };
  if (m.type === 'abort') {
    throw new SoccrError('DELIVERY', `the receiver on ${path} refused the hand-over: ${typeof m.reason === 'string' ? m.reason : 'no reason given'}`);
  }
  if (m.type !== 'ack') throw new SoccrError('DELIVERY', `the receiver on ${path} answered ${JSON.stringify(reply.slice(0, 200))} instead of an ack`);
  if (m.count !== count) throw new SoccrError('DELIVERY', `the receiver on ${path} acknowledged ${String(m.count)} connections, ${count} were sent`);
}
