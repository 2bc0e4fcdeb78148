// Acquisition: finding a process's TCP sockets through procfs and taking one out of it with
// pidfd_open + pidfd_getfd. The duplicate shares the target's open file description, so repair mode
// set through it applies to the target's socket too.
import { fstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import * as N from '../kernel/native';
import { NetnsHandle } from '../kernel/netns';
import { dumpMptcpSockets, dumpTcpSockets } from '../kernel/sockdiag';
import { SoccrError, kernelError } from '../../protocol/errors';
import { localAddress, peerAddress, readTcpInfoHead } from './engine';
import { ULP_NAME_MAX, checkCarriable, hasAoKeys, mptcpRefusal, ulpName } from './uncarriable';
import { SocketAddress, formatIPv4, formatIPv6 } from '../../protocol/address';
import { SUPPORTED_STATES, TcpState, kernelTcpState, stateName } from '../../protocol/saved-state';

export interface TcpSocketInfo {
  fd: number;
  inode: number;
  family: 'ipv4' | 'ipv6';
  local: SocketAddress;
  remote: SocketAddress;
  state: TcpState;
  stateName: string;
  /** Bytes in the send queue (tx_queue in /proc/net/tcp). */
  sendQueue: number;
  /** Bytes in the receive queue (rx_queue). */
  recvQueue: number;
}

interface ProcNetEntry {
  family: 'ipv4' | 'ipv6';
  local: SocketAddress;
  remote: SocketAddress;
  state: TcpState;
  sendQueue: number;
  recvQueue: number;
  inode: number;
}

function hexAddr(hex: string, family: 'ipv4' | 'ipv6'): string {
  // procfs prints each 32-bit word in host (little-endian) byte order.
  const words: Buffer[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const w = Buffer.alloc(4);
    w.writeUInt32LE(parseInt(hex.slice(i, i + 8), 16));
    words.push(w);
  }
  const b = Buffer.concat(words);
  if (family === 'ipv4') return formatIPv4(b);
  return formatIPv6(b);
}

function parseProcNet(text: string, family: 'ipv4' | 'ipv6'): ProcNetEntry[] {
  const out: ProcNetEntry[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 10) continue;
    const [lip, lport] = f[1].split(':');
    const [rip, rport] = f[2].split(':');
    const [tx, rx] = f[4].split(':');
    out.push({
      family,
      local: { family, ip: hexAddr(lip, family), port: parseInt(lport, 16) },
      remote: { family, ip: hexAddr(rip, family), port: parseInt(rport, 16) },
      state: kernelTcpState(parseInt(f[3], 16)),
      sendQueue: parseInt(tx, 16),
      recvQueue: parseInt(rx, 16),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** The TCP table of the process's namespace: a socket-diagnostics dump, or procfs where that fails. */
function readProcNet(pid: number): ProcNetEntry[] {
  let ns: NetnsHandle | undefined;
  try {
    ns = NetnsHandle.open(`/proc/${pid}/ns/net`);
    const dumped = dumpTcpSockets(ns);
    if (dumped) return dumped;
  } catch {
    // no such process, or no way into its namespace: procfs says which
  } finally {
    ns?.close();
  }
  return readProcNetFiles(pid);
}

function readProcNetFiles(pid: number): ProcNetEntry[] {
  const read = (name: string): string => {
    try {
      return readFileSync(`/proc/${pid}/net/${name}`, 'latin1');
    } catch {
      return '';
    }
  };
  return [...parseProcNet(read('tcp'), 'ipv4'), ...parseProcNet(read('tcp6'), 'ipv6')];
}

/**
 * The name of the memory file every soccrd daemon holds open from its start (holdDaemonMarker): its fd
 * links to `/memfd:soccrd-daemon (deleted)`, whatever the daemon's namespaces, path or version, so a
 * daemon is known by what it holds, not by a name it could be started under.
 */
export const DAEMON_MARKER = 'soccrd-daemon';
const MARKER_LINK = `/memfd:${DAEMON_MARKER} (deleted)`;

let markerFd = -1;

/** Makes this process recognisable as a soccrd daemon (see DAEMON_MARKER); once, at start. */
export function holdDaemonMarker(): void {
  if (markerFd < 0) markerFd = N.memfdCreate(DAEMON_MARKER);
}

interface FdScan {
  /** fd -> socket inode for every socket the process holds */
  sockets: Map<number, number>;
  /** it holds a soccrd daemon's marker */
  daemonMarker: boolean;
}

/** Walks /proc/PID/fd once: the process's sockets, and whether it is a soccrd daemon. */
function scanFds(pid: number): FdScan {
  const sockets = new Map<number, number>();
  let daemonMarker = false;
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`, err);
    throw new SoccrError('PERMISSION', `cannot list the fds of pid ${pid}: ${(err as Error).message}`, err);
  }
  for (const name of names) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${name}`);
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) sockets.set(Number(name), Number(m[1]));
      else if (link === MARKER_LINK) daemonMarker = true;
    } catch {
      /* closed meanwhile */
    }
  }
  return { sockets, daemonMarker };
}

/** fd -> socket inode for every socket the process holds. */
function socketFds(pid: number): Map<number, number> {
  return scanFds(pid).sockets;
}

function toInfo(fd: number, e: ProcNetEntry): TcpSocketInfo {
  return {
    fd,
    inode: e.inode,
    family: e.family,
    local: e.local,
    remote: e.remote,
    state: e.state,
    stateName: stateName(e.state),
    sendQueue: e.sendQueue,
    recvQueue: e.recvQueue,
  };
}

/**
 * The process's TCP sockets (listening ones included, marked by their state). `fds`: its sockets as
 * ProcessHandle.facts read them, instead of reading /proc/PID/fd again.
 */
export function listTcpSockets(pid: number, fds?: ReadonlyMap<number, number>): TcpSocketInfo[] {
  validatePid(pid);
  fds ??= socketFds(pid);
  const byInode = new Map(readProcNet(pid).map((e) => [e.inode, e]));
  const out: TcpSocketInfo[] = [];
  for (const [fd, inode] of fds) {
    const e = byInode.get(inode);
    if (e) out.push(toInfo(fd, e));
  }
  return out.sort((a, b) => a.fd - b.fd);
}

/**
 * The fds of the process that hold Multipath TCP connections (listeners left out): sockets no
 * checkpoint can carry, which a listing of TCP sockets does not show. Empty where the kernel cannot
 * dump MPTCP sockets.
 */
export function listMptcpConnections(pid: number): number[] {
  validatePid(pid);
  let ns: NetnsHandle | undefined;
  let mptcp: Array<{ inode: number; state: TcpState }> | undefined;
  try {
    ns = NetnsHandle.open(`/proc/${pid}/ns/net`);
    mptcp = dumpMptcpSockets(ns);
  } catch {
    return [];
  } finally {
    ns?.close();
  }
  const inodes = new Set((mptcp ?? []).filter((s) => s.state !== TcpState.LISTEN).map((s) => s.inode));
  if (inodes.size === 0) return [];
  return [...socketFds(pid)]
    .filter(([, inode]) => inodes.has(inode))
    .map(([fd]) => fd)
    .sort((a, b) => a - b);
}

export interface Owner {
  pid: number;
  fd: number;
  inode: number;
}

function sameAddr(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && a.ip.toLowerCase() === b.ip.toLowerCase();
}

/** Finds the processes and fds that hold the connection with this 4-tuple, in any network namespace. */
export function findOwners(local: SocketAddress, remote: SocketAddress): Owner[] {
  const pids = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
  const inodesByNetns = new Map<string, Set<number>>();
  const owners: Owner[] = [];
  for (const pid of pids) {
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue;
    }
    let inodes = inodesByNetns.get(ns);
    if (!inodes) {
      inodes = new Set(
        readProcNet(pid)
          .filter((e) => e.state !== TcpState.LISTEN && sameAddr(e.local, local) && sameAddr(e.remote, remote))
          .map((e) => e.inode),
      );
      inodesByNetns.set(ns, inodes);
    }
    if (inodes.size === 0) continue;
    let fds: Map<number, number>;
    try {
      fds = socketFds(pid);
    } catch {
      continue;
    }
    for (const [fd, inode] of fds) if (inodes.has(inode)) owners.push({ pid, fd, inode });
  }
  return owners;
}

const takeBatch = new N.KernelBatch(64);

const SIGCONT = 18;
const SIGSTOP = 19;
const SIGKILL = 9;

/** The state letter of /proc/PID/stat (R, S, T, Z, ...), or '' if the process is gone. */
/** How long ProcessHandle.stop asks again without a timer's pause in between. */
const STOP_SPIN_MS = 3;

export function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

function hasPeer(fd: number): boolean {
  try {
    peerAddress(fd, localAddress(fd).family);
    return true;
  } catch (err) {
    if (err instanceof N.SyscallError && err.code === 'ENOTCONN') return false;
    throw err;
  }
}

/**
 * What the checkpoint policy and its refusals look at, read from /proc/PID once the process's pidfd was
 * open and confirmed against that pidfd afterwards (ProcessHandle.facts): they are this process's, even
 * if its pid is reused at any moment.
 */
export interface ProcessFacts {
  pid: number;
  /** the Uid: line of /proc/PID/status: real, effective, saved set and filesystem uid */
  uids: { real: number; effective: number; saved: number; fs: number };
  /** the cgroup v2 path (the 0:: line of /proc/PID/cgroup), undefined without cgroup v2 */
  cgroup: string | undefined;
  /** start time in clock ticks since boot (field 22 of /proc/PID/stat): the process's identity over time */
  startTime: number;
  /** fd -> socket inode for every socket it holds */
  sockets: ReadonlyMap<number, number>;
  /** it is this daemon */
  self: boolean;
  /** it is a soccrd daemon (it holds DAEMON_MARKER): this one or another */
  soccrd: boolean;
}

/**
 * A daemon never takes the sockets of itself (with a stopped owner it would stop itself, and it would
 * freeze the connections it serves on) nor of another soccrd (its sessions, data connections and
 * callers): whatever any policy says. For Checkpoint and Handoff.
 */
export function refuseDaemons(facts: ProcessFacts): void {
  if (facts.self) throw new SoccrError('FORBIDDEN', `pid ${facts.pid} is this soccrd daemon: it does not take its own connections`);
  if (facts.soccrd) throw new SoccrError('FORBIDDEN', `pid ${facts.pid} is another soccrd daemon: a daemon's connections are not taken`);
}

/** Reads a /proc/PID file; a process gone meanwhile is NO_SUCH_PROCESS. */
function procText(pid: number, name: string): string {
  try {
    return readFileSync(`/proc/${pid}/${name}`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`, err);
    throw new SoccrError('PERMISSION', `cannot read /proc/${pid}/${name}: ${(err as Error).message}`, err);
  }
}

function parseUids(status: string, pid: number): ProcessFacts['uids'] {
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
  if (!m) throw new SoccrError('KERNEL', `/proc/${pid}/status has no Uid: line`);
  return { real: Number(m[1]), effective: Number(m[2]), saved: Number(m[3]), fs: Number(m[4]) };
}

function parseStartTime(stat: string): number {
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

function validatePid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new SoccrError('NO_SUCH_PROCESS', `invalid pid ${pid}`);
}

/** A process handle held while taking several of its sockets. */
export class ProcessHandle {
  readonly pid: number;
  private pidfd: number;
  private constructor(pid: number, pidfd: number) {
    this.pid = pid;
    this.pidfd = pidfd;
  }

  static open(pid: number): ProcessHandle {
    validatePid(pid);
    try {
      return new ProcessHandle(pid, N.pidfdOpen(pid));
    } catch (err) {
      // A pid that names no process is the caller's NOT_FOUND, not a failed kernel call (the metrics
      // count SyscallErrors in a cause chain): the errno goes along without it.
      if (err instanceof N.SyscallError && (err.code === 'ESRCH' || err.code === 'EINVAL')) {
        throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`, undefined, { errno: err.code });
      }
      throw kernelError(`pidfd_open(${pid})`, err);
    }
  }

  /**
   * The process's facts (ProcessFacts), read from /proc/PID after its pidfd was opened and confirmed
   * against the pidfd afterwards: a pid reused between the pidfd_open and the reads cannot lend another
   * process's facts. NO_SUCH_PROCESS if it exited.
   */
  facts(): ProcessFacts {
    const pid = this.pid;
    const status = procText(pid, 'status');
    const cgroupLine = procText(pid, 'cgroup')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    const startTime = parseStartTime(procText(pid, 'stat'));
    const fds = scanFds(pid);
    this.confirm();
    return {
      pid,
      uids: parseUids(status, pid),
      cgroup: cgroupLine?.slice(3),
      startTime,
      sockets: fds.sockets,
      self: pid === process.pid,
      soccrd: fds.daemonMarker,
    };
  }

  /**
   * Proves that the pidfd's process is still alive, so that what /proc/PID showed before this call was
   * its: a process never comes back, and while it lives its pid names nothing else. NO_SUCH_PROCESS if
   * it exited (its pid may already name another process).
   */
  confirm(): void {
    try {
      N.pidfdSendSignal(this.pidfd, 0);
    } catch (err) {
      if (err instanceof N.SyscallError && err.code === 'ESRCH')
        throw new SoccrError('NO_SUCH_PROCESS', `pid ${this.pid} has exited; nothing was done`, undefined, { errno: err.code });
      throw kernelError(`checking that pid ${this.pid} still runs`, err);
    }
  }

  /**
   * Takes a duplicate of the process's fd after checking that it is a connected TCP socket in a state
   * the engine supports, with nothing repair mode cannot carry (uncarriable.ts). On refusal nothing of
   * the target's socket has been changed. `listedInode`: the
   * inode the process's TCP table gave a connection in a supported state on this fd; if the duplicate is
   * that very socket, its kind and state are known and their checks (two calls) are skipped.
   */
  takeTcpSocket(fd: number, listedInode?: number): number {
    if (!Number.isInteger(fd) || fd < 0) throw new SoccrError('NO_SUCH_FD', `invalid fd ${fd}`);
    const dup = this.dupFd(fd);
    const what = `fd ${fd} of pid ${this.pid}`;
    try {
      if (listedInode !== undefined && fstatSync(dup).ino === listedInode) {
        checkCarriable(dup, what);
        return dup;
      }
      let protocol: number;
      try {
        protocol = N.getsockoptInt(dup, N.SOL_SOCKET, N.SO.PROTOCOL);
      } catch (err) {
        if (err instanceof N.SyscallError && err.code === 'ENOTSOCK') throw new SoccrError('NOT_A_SOCKET', `fd ${fd} of pid ${this.pid} is not a socket`, err);
        throw err;
      }
      if (protocol === N.IPPROTO_MPTCP) throw mptcpRefusal(what);
      if (protocol !== N.IPPROTO_TCP) throw new SoccrError('NOT_TCP', `fd ${fd} of pid ${this.pid} is not a TCP socket (protocol ${protocol})`);
      let state: TcpState;
      try {
        state = readTcpInfoHead(dup).state; // fails on raw sockets, which also report protocol 6
      } catch (err) {
        throw new SoccrError('NOT_TCP', `fd ${fd} of pid ${this.pid} is not a TCP stream socket`, err);
      }
      if (state === TcpState.LISTEN) throw new SoccrError('LISTENING', `fd ${fd} of pid ${this.pid} is a listening socket`);
      if (state === TcpState.CLOSE && !hasPeer(dup))
        throw new SoccrError('UNSUPPORTED_STATE', `fd ${fd} of pid ${this.pid} is a TCP socket that was never connected`);
      if (!SUPPORTED_STATES.has(state))
        throw new SoccrError('UNSUPPORTED_STATE', `fd ${fd} of pid ${this.pid} is in state ${stateName(state)}, which cannot be checkpointed`);
      checkCarriable(dup, what);
      return dup;
    } catch (err) {
      N.closeQuietly(dup);
      throw err instanceof SoccrError ? err : kernelError(`inspecting fd ${fd} of pid ${this.pid}`, err);
    }
  }

  /**
   * takeTcpSocket for many fds, with their kernel calls in one batch: duplicates in the same order. An
   * fd the batch cannot accept as it is (an error, another kind or state, a closed socket whose peer
   * must be checked) goes through takeTcpSocket for its precise answer. On the first refusal every
   * duplicate taken is closed and the refusal thrown.
   */
  takeTcpSockets(fds: readonly number[]): number[] {
    const b = takeBatch.reset();
    const ops = fds.map((fd, i) => {
      b.group = i;
      const dup = b.pidfdGetfd(this.pidfd, fd);
      const protocol = b.getInt({ op: dup }, N.SOL_SOCKET, N.SO.PROTOCOL);
      const info = b.getBytes({ op: dup }, N.SOL_TCP, N.TCP.INFO, 8);
      const ulp = b.getBytes({ op: dup }, N.SOL_TCP, N.TCP.ULP, ULP_NAME_MAX);
      return { dup, protocol, info, ulp };
    });
    b.run();
    const dups: number[] = [];
    try {
      fds.forEach((fd, i) => {
        const { dup, protocol, info, ulp } = ops[i];
        const state = b.ok(info) ? kernelTcpState(b.bytes(info)[0]) : undefined;
        // TCP-AO needs a call of its own, and only on a kernel that has TCP-AO at all (hasAoKeys)
        const plain = b.ok(ulp) && ulpName(b.bytes(ulp)) === '' && !(b.ok(dup) && hasAoKeys(b.result(dup)));
        const fits = plain && state !== undefined && b.int(protocol) === N.IPPROTO_TCP && state !== TcpState.CLOSE && SUPPORTED_STATES.has(state);
        if (fits) {
          dups.push(b.result(dup));
          return;
        }
        if (b.ok(dup)) N.closeQuietly(b.result(dup));
        dups.push(this.takeTcpSocket(fd));
      });
      return dups;
    } catch (err) {
      for (const d of dups) N.closeQuietly(d);
      // The refused fd's own duplicate is closed already; those after it are still open.
      fds.forEach((_, i) => {
        if (i > dups.length && b.ok(ops[i].dup)) N.closeQuietly(b.result(ops[i].dup));
      });
      throw err;
    }
  }

  /**
   * The fds of closed TCP connections that still hold unread bytes or a pending error (reset by the
   * peer): a connection in CLOSE is no longer hashed, so no TCP listing shows it, yet its receive
   * queue, and the news that it ended, are the owner's (CRIU takes every closed socket with a peer).
   * Every socket fd of `sockets` (fd -> inode) whose inode `listed` does not have is looked at, in one
   * batch of kernel calls (duplicate, protocol, state, queue), the error by poll (SO_ERROR would clear
   * it), and our duplicates closed again.
   */
  closedWithData(sockets: ReadonlyMap<number, number>, listed: ReadonlySet<number>): number[] {
    const candidates = [...sockets].filter(([, inode]) => !listed.has(inode)).map(([fd]) => fd);
    if (candidates.length === 0) return [];
    const b = takeBatch.reset();
    const ops = candidates.map((fd, i) => {
      b.group = i;
      const dup = b.pidfdGetfd(this.pidfd, fd);
      const protocol = b.getInt({ op: dup }, N.SOL_SOCKET, N.SO.PROTOCOL);
      const info = b.getBytes({ op: dup }, N.SOL_TCP, N.TCP.INFO, 8);
      const inq = b.ioctlInt({ op: dup }, N.SIOCINQ);
      return { dup, protocol, info, inq };
    });
    b.run();
    const found: number[] = [];
    candidates.forEach((fd, i) => {
      const { dup, protocol, info, inq } = ops[i];
      if (!b.ok(dup)) return;
      const d = b.result(dup);
      try {
        const closed = b.ok(info) && b.int(protocol) === N.IPPROTO_TCP && kernelTcpState(b.bytes(info)[0]) === TcpState.CLOSE;
        const unread = b.ok(inq) && b.int(inq) > 0;
        if (closed && (unread || (N.pollNow(d) & N.POLLERR) !== 0) && hasPeer(d)) found.push(fd);
      } finally {
        N.closeQuietly(d);
      }
    });
    return found;
  }

  /**
   * A duplicate of the process's fd, whatever it is (recovery checks its inode itself). Throws
   * NO_SUCH_FD or NO_SUCH_PROCESS.
   */
  dupFd(fd: number): number {
    try {
      return N.pidfdGetfd(this.pidfd, fd);
    } catch (err) {
      if (err instanceof N.SyscallError && err.code === 'EBADF') throw new SoccrError('NO_SUCH_FD', `pid ${this.pid} has no fd ${fd}`, err);
      if (err instanceof N.SyscallError && err.code === 'ESRCH') throw new SoccrError('NO_SUCH_PROCESS', `pid ${this.pid} has exited`, err);
      throw kernelError(`pidfd_getfd(pid ${this.pid}, fd ${fd})`, err);
    }
  }

  /** Stops the process (SIGSTOP) and waits, bounded, until the kernel reports it stopped. */
  async stop(timeoutMs = 2000): Promise<void> {
    try {
      N.pidfdSendSignal(this.pidfd, SIGSTOP);
    } catch (err) {
      throw kernelError(`stopping pid ${this.pid}`, err);
    }
    const start = Date.now();
    const deadline = start + timeoutMs;
    for (;;) {
      if (processState(this.pid) === 'T') return;
      const now = Date.now();
      if (now > deadline) throw new SoccrError('KERNEL', `pid ${this.pid} did not stop within ${timeoutMs} ms`);
      // A process usually stops within a fraction of a millisecond (it only has to be scheduled): asked
      // again at once at first, since a timer's millisecond (more on a busy machine) would be freeze time.
      await new Promise((r) => (now - start < STOP_SPIN_MS ? setImmediate(r) : setTimeout(r, 1)));
    }
  }

  /**
   * Duplicates of many of the process's fds, whatever they are, with the inode each duplicate names, in
   * one batch of kernel calls (a hand-off takes them while the owner is stopped, and checks them against
   * its listing; `batch` sized beforehand keeps its growing out of that). Per fd: the duplicate (the caller closes it) and its inode (-1 if fstat failed), or the
   * failure of pidfd_getfd.
   */
  dupFdsWithInodes(fds: readonly number[], batch = takeBatch): Array<{ dup: number; inode: number } | { error: N.SyscallError }> {
    const b = batch.reset();
    const ops = fds.map((fd, i) => {
      b.group = i;
      const dup = b.pidfdGetfd(this.pidfd, fd);
      return { dup, ino: b.fstatIno({ op: dup }, N.NOSTOP) };
    });
    b.run();
    return ops.map(({ dup, ino }) => (b.ok(dup) ? { dup: b.result(dup), inode: b.ok(ino) ? b.inode(ino) : -1 } : { error: b.error(dup) }));
  }

  /** Kills the process (SIGKILL through its pidfd). Never throws: false if it is gone already. */
  kill(): boolean {
    try {
      N.pidfdSendSignal(this.pidfd, SIGKILL);
      return true;
    } catch {
      return false;
    }
  }

  /** Continues a stopped process (SIGCONT). Never throws: the process may be gone. */
  cont(): boolean {
    try {
      N.pidfdSendSignal(this.pidfd, SIGCONT);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The process's network namespace, opened once: from the pidfd itself where the kernel can
   * (PIDFD_GET_NET_NAMESPACE, Linux 6.11+), else through /proc/PID/ns/net, confirmed against the pidfd
   * (the process still alive after the open, so the pid named it and no process that reused it).
   */
  netns(): NetnsHandle {
    let fd = -1;
    try {
      fd = N.ioctlNoArg(this.pidfd, N.PIDFD_GET_NET_NAMESPACE);
    } catch (err) {
      if (err instanceof N.SyscallError && err.code === 'ESRCH') throw new SoccrError('NO_SUCH_PROCESS', `pid ${this.pid} has exited`, err);
      // ENOTTY/EINVAL: a kernel without the ioctl; procfs below.
    }
    if (fd >= 0) return NetnsHandle.adopt(fd, `/proc/${this.pid}/ns/net`);
    const ns = NetnsHandle.open(`/proc/${this.pid}/ns/net`);
    try {
      N.pidfdSendSignal(this.pidfd, 0);
    } catch (err) {
      ns.close();
      throw new SoccrError('NO_SUCH_PROCESS', `pid ${this.pid} has exited`, err);
    }
    return ns;
  }

  close(): void {
    if (this.pidfd >= 0) N.closeQuietly(this.pidfd);
    this.pidfd = -1;
  }
}

/** Takes one socket: pidfd_open, pidfd_getfd and the checks of `takeTcpSocket`. */
export function takeTcpSocket(pid: number, fd: number): number {
  const h = ProcessHandle.open(pid);
  try {
    return h.takeTcpSocket(fd);
  } finally {
    h.close();
  }
}
