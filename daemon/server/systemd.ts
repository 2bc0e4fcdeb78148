// systemd integration done by the daemon itself (no libsystemd): the sd_notify(3) protocol (READY=1,
// STATUS=, STOPPING=1 and WATCHDOG=1 datagrams to the socket in $NOTIFY_SOCKET) and the sd_listen_fds(3)
// protocol (listening sockets passed from fd 3 on, for socket activation). Without these variables all
// of it is a no-op. They are removed from the environment once read, so that the programs soccrd runs
// (nft, nsenter) neither notify nor take sockets in its place.
import * as N from '../kernel/native';
import { errorMessage } from '../../protocol/errors';

/** The interval of setInterval is a signed 32-bit number of ms. */
const MAX_TIMER_MS = 0x7fffffff;
/** What one notification may carry (systemd reads far more; STATUS lines are kept short anyway). */
const MAX_MESSAGE = 4096;

/** Messages to the service manager over its notification socket. */
export class Notifier {
  /** the notification socket ('@name': abstract), undefined when not run under a service manager */
  readonly socketPath: string | undefined;
  /** how often to send WATCHDOG=1 (half of $WATCHDOG_USEC), undefined without a watchdog */
  readonly watchdogIntervalMs: number | undefined;
  private fd = -1;
  private dest: { addr: N.PinnedBuffer; len: number } | undefined;
  private readonly out = N.pinned(MAX_MESSAGE);
  private watchdog: NodeJS.Timeout | undefined;
  private lastStatus = '';
  /** the errno of the last send that failed (0: none), for the logs */
  lastError = 0;

  private constructor(socketPath: string | undefined, watchdogIntervalMs: number | undefined) {
    this.socketPath = socketPath;
    this.watchdogIntervalMs = watchdogIntervalMs;
  }

  /** Reads (and removes) NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Notifier {
    const socketPath = env.NOTIFY_SOCKET;
    const usec = Number(env.WATCHDOG_USEC);
    const watchdogPid = env.WATCHDOG_PID;
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) Reflect.deleteProperty(env, k);
    const usable = socketPath !== undefined && (socketPath.startsWith('/') || (socketPath.startsWith('@') && socketPath.length > 1));
    // The watchdog is ours unless WATCHDOG_PID names another process (as sd_watchdog_enabled decides).
    const ours = watchdogPid === undefined || watchdogPid === '' || Number(watchdogPid) === pid;
    const interval = usable && ours && Number.isInteger(usec) && usec > 0 ? Math.min(Math.max(Math.floor(usec / 2000), 1), MAX_TIMER_MS) : undefined;
    return new Notifier(usable ? socketPath : undefined, interval);
  }

  get enabled(): boolean {
    return this.socketPath !== undefined;
  }

  /**
   * Sends KEY=VALUE lines in one datagram; false if not under a service manager or the send failed
   * (never throws, never blocks: the socket is non-blocking, and a full queue drops the message).
   */
  send(fields: Record<string, string | number>): boolean {
    if (!this.socketPath) return false;
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]+/g, ' ')}`)
      .join('\n');
    const len = this.out.buf.write(`${text}\n`.slice(0, MAX_MESSAGE), 0, 'utf8');
    const dest = this.dest ?? this.open(this.socketPath);
    if (!dest) return false;
    const r = N.trySendTo(this.fd, this.out, len, dest.addr, dest.len);
    this.lastError = r < 0 ? -r : 0;
    return r >= 0;
  }

  /** The socket messages go out on, made at the first message. */
  private open(socketPath: string): { addr: N.PinnedBuffer; len: number } | undefined {
    try {
      const dest = N.unixSockaddr(socketPath);
      this.fd = N.socket(N.AF_UNIX, N.SOCK_DGRAM | N.SOCK_CLOEXEC | N.SOCK_NONBLOCK, 0);
      this.dest = dest;
      return dest;
    } catch (err) {
      this.lastError = err instanceof N.SyscallError ? err.errno : -1;
      return undefined;
    }
  }

  /** READY=1: every listener accepts calls. */
  ready(status: string): boolean {
    this.lastStatus = status;
    return this.send({ READY: 1, STATUS: status, MAINPID: process.pid });
  }

  /** A STATUS= line, sent only when it changed. */
  status(status: string): boolean {
    if (status === this.lastStatus) return true;
    this.lastStatus = status;
    return this.send({ STATUS: status });
  }

  stopping(status: string): boolean {
    this.lastStatus = status;
    return this.send({ STOPPING: 1, STATUS: status });
  }

  /**
   * Pings the watchdog at half its timeout from a timer on the event loop: a loop blocked for longer
   * than that misses pings, and the service manager restarts the daemon. Unreferenced: it never keeps
   * the process alive by itself.
   */
  startWatchdog(): void {
    if (this.watchdogIntervalMs === undefined || this.watchdog) return;
    this.send({ WATCHDOG: 1 });
    this.watchdog = setInterval(() => this.send({ WATCHDOG: 1 }), this.watchdogIntervalMs);
    this.watchdog.unref();
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (this.fd >= 0) N.closeQuietly(this.fd);
    this.fd = -1;
  }
}

/** A listening socket the service manager passed (socket activation). */
export interface InheritedSocket {
  fd: number;
  /** its name from $LISTEN_FDNAMES (FileDescriptorName= of the .socket unit), or 'fdN' */
  name: string;
  kind: 'unix' | 'tcp';
  /** a Unix socket's path ('@name': abstract; '': unnamed) */
  path: string;
}

/** The first fd sd_listen_fds(3) hands over. */
export const SD_LISTEN_FDS_START = 3;

/**
 * The listening sockets passed by socket activation: fds 3 .. 3+$LISTEN_FDS-1 when $LISTEN_PID is this
 * process (otherwise they were meant for another one, e.g. a wrapper that did not exec). Reads and
 * removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES; marks the fds close-on-exec. Throws on an fd that
 * is not a listening stream socket of AF_UNIX, AF_INET or AF_INET6.
 */
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): InheritedSocket[] {
  const listenPid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) Reflect.deleteProperty(env, k);
  if (listenPid === undefined || !/^\d+$/.test(listenPid) || Number(listenPid) !== pid) return [];
  if (count === undefined || !/^\d+$/.test(count)) throw new Error(`LISTEN_FDS=${count ?? '(unset)'}: not a number`);
  const n = Number(count);
  if (n > 1024) throw new Error(`LISTEN_FDS=${n}: too many`);
  const out: InheritedSocket[] = [];
  for (let i = 0; i < n; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const name = names[i] || `fd${fd}`;
    const what = `socket-activation fd ${fd} (${name})`;
    let domain: number;
    try {
      // As sd_listen_fds does (Node 20 was seen to mark them already at start; this does not rely on it).
      N.fcntl(fd, N.F_SETFD, N.FD_CLOEXEC);
      domain = N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.DOMAIN);
      if (N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.TYPE) !== N.SOCK_STREAM) throw new Error('not a stream socket (give the .socket unit ListenStream=)');
      if (N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.ACCEPTCONN) !== 1) throw new Error('not listening (Accept=yes is not supported)');
    } catch (err) {
      throw new Error(`${what}: ${errorMessage(err)}`, { cause: err });
    }
    if (domain === N.AF_UNIX) out.push({ fd, name, kind: 'unix', path: N.unixSocketName(fd) });
    else if (domain === N.AF_INET || domain === N.AF_INET6) out.push({ fd, name, kind: 'tcp', path: '' });
    else throw new Error(`${what}: address family ${domain} (only Unix and TCP sockets)`);
  }
  return out;
}
