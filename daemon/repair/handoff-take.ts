// What a same-host hand-off takes from the old owner: the live sockets themselves, never frozen and never
// copied. Which fds (those named, or every connected TCP socket, and listening ones when asked; every
// socket --all leaves out is named with its reason), then our duplicates of them in one batch of kernel
// calls, each checked against what the listing saw; and, once the owner is stopped, whether it changed
// any of them since they were taken (it ran meanwhile).
import { closeSync, fstatSync, openSync, readdirSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as N from '../kernel/native';
import { SoccrError, kernelError } from '../../protocol/errors';
import type { SocketAddress } from '../../protocol/address';
import { TcpState, stateName } from '../../protocol/saved-state';
import { ProcessHandle, TcpSocketInfo, listTcpSockets } from './acquire';
import { localAddress, peerAddress, readTcpInfoHead } from './engine';

/** One socket a hand-off passes on: its fd in the old owner, its addresses and state as seen before the stop. */
export interface HandoffSocket {
  fd: number;
  inode: number;
  local: SocketAddress;
  remote: SocketAddress;
  state: TcpState;
}

export interface HandoffSelection {
  fds: readonly number[];
  all: boolean;
  listeners: boolean;
  /** the process's sockets (fd -> inode) as ProcessHandle.facts read them, instead of reading /proc/PID/fd again */
  known?: ReadonlyMap<number, number>;
}

export interface HandoffChoice {
  sockets: HandoffSocket[];
  /** what --all left out, and why */
  skipped: Array<{ fd: number; kind: string; reason: string }>;
  /** every fd the process had open just before it was listed: what it opens later is looked at after the stop */
  fdsBefore: Set<number>;
}

const fromInfo = (s: TcpSocketInfo): HandoffSocket => ({ fd: s.fd, inode: s.inode, local: s.local, remote: s.remote, state: s.state });

/**
 * The sockets a hand-off of `pid` takes. Named fds must be TCP sockets (connected or listening: one named
 * is wanted whatever its state); with `all`, every connected TCP socket, and listening ones with
 * `listeners`. A named fd the process's own TCP table does not show (a socket of another namespace) is
 * described later, from our duplicate.
 */
export function chooseHandoffSockets(pid: number, sel: HandoffSelection): HandoffChoice {
  if (!Number.isInteger(pid) || pid <= 0) throw new SoccrError('BAD_REQUEST', 'pid is required');
  if (sel.all && sel.fds.length) throw new SoccrError('BAD_REQUEST', 'give fds or all, not both');
  if (!sel.all && !sel.fds.length) throw new SoccrError('BAD_REQUEST', 'give the fds to hand off, or all');
  const fdsBefore = new Set(fdsOf(pid));
  const listed = listTcpSockets(pid, sel.known);
  if (!sel.all) {
    const byFd = new Map(listed.map((s) => [s.fd, s]));
    const sockets = [...new Set(sel.fds)].map((fd): HandoffSocket => {
      if (!Number.isInteger(fd) || fd < 0) throw new SoccrError('NO_SUCH_FD', `invalid fd ${fd}`);
      const s = byFd.get(fd);
      return s ? fromInfo(s) : { fd, inode: -1, local: unknownAddress, remote: unknownAddress, state: TcpState.CLOSE };
    });
    return { sockets, skipped: [], fdsBefore };
  }
  const sockets: HandoffSocket[] = [];
  const skipped: HandoffChoice['skipped'] = [];
  for (const s of listed) {
    if (s.state === TcpState.LISTEN) {
      if (sel.listeners) sockets.push(fromInfo(s));
      else skipped.push({ fd: s.fd, kind: 'LISTENING', reason: 'a listening socket (hand listeners off with listeners / --listeners)' });
    } else if (s.remote.port === 0) {
      skipped.push({ fd: s.fd, kind: 'UNSUPPORTED_STATE', reason: `a TCP socket that is not connected (${stateName(s.state)})` });
    } else sockets.push(fromInfo(s));
  }
  if (!sockets.length)
    throw new SoccrError('NO_SUCH_FD', `pid ${pid} holds no TCP socket to hand off${sel.listeners ? '' : ' (listening ones need listeners)'}`);
  return { sockets, skipped, fdsBefore };
}

const unknownAddress: SocketAddress = { family: 'ipv4', ip: '0.0.0.0', port: 0 };

/** What the hand-off takes once the owner is stopped: the sockets, our duplicates of them (same order). */
export interface TakenSockets {
  sockets: HandoffSocket[];
  dups: number[];
}

/**
 * Our duplicates of the chosen sockets, taken once the owner is stopped (its fds no longer change), in one
 * batch of kernel calls: each duplicate and its inode, against what the listing saw. A chosen fd the owner
 * closed since, or reused for another socket, and (with `all`) a socket it opened since (a connection it
 * accepted between the listing and the stop) are dealt with one by one: nothing the owner holds at the
 * stop is left behind unsaid. On refusal every duplicate is closed, and nothing of the owner's sockets has
 * changed. `choice.skipped` gets what was left out.
 */
export function takeHandoffSockets(proc: ProcessHandle, choice: HandoffChoice, sel: HandoffSelection, batch?: N.KernelBatch): TakenSockets {
  const taken: TakenSockets = { sockets: [], dups: [] };
  const keep = (s: HandoffSocket, dup: number): void => {
    taken.sockets.push(s);
    taken.dups.push(dup);
  };
  const got = proc.dupFdsWithInodes(
    choice.sockets.map((s) => s.fd),
    batch,
  );
  const opened: number[] = got.flatMap((g) => ('dup' in g ? [g.dup] : []));
  try {
    choice.sockets.forEach((s, i) => {
      const g = got[i];
      if ('error' in g) {
        const err = g.error;
        if (err.code === 'ESRCH') throw new SoccrError('NO_SUCH_PROCESS', `pid ${proc.pid} has exited`, err);
        if (err.code !== 'EBADF') throw kernelError(`pidfd_getfd(pid ${proc.pid}, fd ${s.fd})`, err);
        if (!sel.all) throw new SoccrError('NO_SUCH_FD', `pid ${proc.pid} has no fd ${s.fd}`, err);
        choice.skipped.push({ fd: s.fd, kind: 'NO_SUCH_FD', reason: 'closed by its owner before it was stopped' });
        return;
      }
      if (s.inode >= 0 && g.inode === s.inode) {
        keep(s, g.dup);
        return;
      }
      // Never listed (another namespace's socket), or the fd now names another file.
      const again = described(proc.pid, s.fd, g.dup, sel, choice);
      if (again) keep({ fd: s.fd, ...again }, g.dup);
      else closeOpened(opened, g.dup);
    });
    if (sel.all) {
      for (const fd of openedSince(proc.pid, choice)) {
        let d: number;
        try {
          d = proc.dupFd(fd);
        } catch (err) {
          if (err instanceof SoccrError && err.kind === 'NO_SUCH_FD') continue;
          throw err;
        }
        opened.push(d);
        const s = described(proc.pid, fd, d, sel, choice);
        if (s) keep({ fd, ...s }, d);
        else closeOpened(opened, d);
      }
    }
    if (!taken.sockets.length) throw new SoccrError('NO_SUCH_FD', `pid ${proc.pid} holds no TCP socket to hand off any more`);
    return taken;
  } catch (err) {
    for (const d of opened) N.closeQuietly(d);
    throw err instanceof SoccrError ? err : kernelError(`inspecting the sockets of pid ${proc.pid}`, err);
  }
}

function closeOpened(opened: number[], d: number): void {
  N.closeQuietly(d);
  opened.splice(opened.indexOf(d), 1);
}

/**
 * A duplicate described, or undefined when `all` leaves it out (not a TCP socket: silently, since --all
 * takes TCP sockets only; a TCP socket it does not take: in `choice.skipped`). Named fds: refused as
 * describe() refuses them.
 */
function described(pid: number, fd: number, dup: number, sel: HandoffSelection, choice: HandoffChoice): Omit<HandoffSocket, 'fd'> | undefined {
  let s: Omit<HandoffSocket, 'fd'>;
  try {
    s = describe(pid, fd, dup);
  } catch (err) {
    if (!sel.all) throw err;
    if (err instanceof SoccrError && (err.kind === 'NOT_A_SOCKET' || err.kind === 'NOT_TCP')) return undefined;
    if (err instanceof SoccrError) {
      choice.skipped.push({ fd, kind: err.kind, reason: err.message });
      return undefined;
    }
    throw err;
  }
  if (!sel.all) return s;
  if (s.state === TcpState.LISTEN && !sel.listeners) {
    choice.skipped.push({ fd, kind: 'LISTENING', reason: 'a listening socket (hand listeners off with listeners / --listeners)' });
    return undefined;
  }
  return s;
}

/** The fds the owner opened between the listing and the stop (chosen ones excluded). */
function openedSince(pid: number, choice: HandoffChoice): number[] {
  const chosen = new Set(choice.sockets.map((s) => s.fd));
  return fdsOf(pid).filter((fd) => !choice.fdsBefore.has(fd) && !chosen.has(fd));
}

/** The fd numbers a process has open ([] once it is gone). */
export function fdsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map(Number);
  } catch {
    return [];
  }
}

/** A TCP socket's addresses and state, read from our duplicate of it. */
function describe(pid: number, fd: number, dup: number): Omit<HandoffSocket, 'fd'> {
  let protocol: number;
  try {
    protocol = N.getsockoptInt(dup, N.SOL_SOCKET, N.SO.PROTOCOL);
  } catch (err) {
    if (err instanceof N.SyscallError && err.code === 'ENOTSOCK') throw new SoccrError('NOT_A_SOCKET', `fd ${fd} of pid ${pid} is not a socket`, err);
    throw err;
  }
  if (protocol !== N.IPPROTO_TCP) throw new SoccrError('NOT_TCP', `fd ${fd} of pid ${pid} is not a TCP socket (protocol ${protocol})`);
  let state: TcpState;
  try {
    state = readTcpInfoHead(dup).state; // fails on raw sockets, which also report protocol 6
  } catch (err) {
    throw new SoccrError('NOT_TCP', `fd ${fd} of pid ${pid} is not a TCP stream socket`, err);
  }
  const local = localAddress(dup);
  let remote: SocketAddress = { family: local.family, ip: local.family === 'ipv6' ? '::' : '0.0.0.0', port: 0 };
  if (state !== TcpState.LISTEN) {
    try {
      remote = peerAddress(dup, local.family);
    } catch (err) {
      if (!(err instanceof N.SyscallError && err.code === 'ENOTCONN')) throw err;
      throw new SoccrError('UNSUPPORTED_STATE', `fd ${fd} of pid ${pid} is a TCP socket that is neither connected nor listening`, err);
    }
  }
  return { inode: fstatSync(dup).ino, local, remote, state };
}

/** The owner's other fds as the take left them: fd -> the inode each names (0 where it could not be read). */
export type OtherFds = ReadonlyMap<number, number>;

/**
 * The owner's other fds as the take left them, to see after the stop which fds changed (a hand-off
 * that sent its sockets before stopping the owner).
 */
export function otherFds(pid: number, taken: TakenSockets): OtherFds {
  const handed = new Set(taken.sockets.map((s) => s.fd));
  return new Map(fdsOf(pid).flatMap((fd) => (handed.has(fd) ? [] : [[fd, inodeAt(pid, fd)] as [number, number]])));
}

/** How many fds a process has open: the size /proc/PID/fd reports (Linux 6.2+), or undefined. */
function fdCount(pid: number): number | undefined {
  try {
    const size = statSync(`/proc/${pid}/fd`).size;
    return size > 0 ? size : undefined;
  } catch {
    return undefined;
  }
}

/** The inode the owner's `fd` names (following /proc/PID/fd/FD), 0 if it cannot be read (closed). */
function inodeAt(pid: number, fd: number): number {
  try {
    return statSync(`/proc/${pid}/fd/${fd}`).ino;
  } catch {
    return 0;
  }
}

/**
 * Once the owner is stopped: what changed since `taken` was taken while it ran, or undefined if nothing
 * did. Every handed fd must still name the very open file we hold (kcmp, all in one batch of kernel
 * calls): one the owner closed meanwhile must not go on in the new owner, as it would, held by our
 * duplicate. With `all`, no other fd may have become a socket the hand-off takes (an accepted
 * connection): each fd that is new or names another file than at the take (`others`) is looked at.
 */
export function changedSince(
  proc: ProcessHandle,
  taken: TakenSockets,
  sel: HandoffSelection,
  others: ReadonlyMap<number, number>,
  batch: N.KernelBatch,
): string | undefined {
  const b = batch.reset();
  const ops = taken.sockets.map((s, i) => {
    b.group = i;
    return b.kcmpFile(taken.dups[i], proc.pid, s.fd);
  });
  b.run();
  const moved = ops.findIndex((op) => !b.ok(op));
  if (moved >= 0) {
    const fd = taken.sockets[moved].fd;
    return b.errno(ops[moved]) === osConstants.errno.EBADF ? `the owner closed fd ${fd}` : `fd ${fd} of the owner names another file`;
  }
  if (!sel.all) return undefined;
  // Every handed fd is in place; if every other one is too, naming what it named, and the process has
  // no more fds than that, nothing was opened: the common case, without listing a thousand fds.
  const same = [...others].every(([fd, ino]) => ino === 0 || inodeAt(proc.pid, fd) === ino);
  const open = [...others.values()].filter((ino) => ino !== 0).length + taken.sockets.length;
  if (same && fdCount(proc.pid) === open) return undefined;
  const handed = new Set(taken.sockets.map((s) => s.fd));
  for (const fd of fdsOf(proc.pid)) {
    if (handed.has(fd)) continue;
    const ino = inodeAt(proc.pid, fd);
    if (ino === 0 || others.get(fd) === ino) continue;
    // New, or another file than at the take: one the hand-off takes would have been left behind.
    let dup: number;
    try {
      dup = proc.dupFd(fd);
    } catch {
      continue; // closed again
    }
    try {
      const s = describe(proc.pid, fd, dup);
      if (s.state !== TcpState.LISTEN ? s.remote.port !== 0 : sel.listeners) return `the owner opened fd ${fd} (a TCP socket) meanwhile`;
    } catch {
      // not a TCP socket, or one --all would not take
    } finally {
      N.closeQuietly(dup);
    }
  }
  return undefined;
}

/** A batch of kernel calls with room for taking `count` sockets, made before the owner is stopped. */
export function takeBatchFor(count: number): N.KernelBatch {
  return new N.KernelBatch(2 * count + 8);
}

/**
 * Grows this process's fd table to hold `more` fds above the ones open now, before the owner is
 * stopped: the kernel grows a table shared by threads (Node's) with an RCU grace period each time, tens
 * of milliseconds on a busy machine, which would otherwise fall inside the freeze. Best effort.
 */
export function growFdTable(more: number): void {
  let probe = -1;
  try {
    const top = Math.max(0, ...fdsOf(process.pid));
    probe = openSync('/dev/null', 'r');
    N.closeQuietly(N.fcntl(probe, N.F_DUPFD_CLOEXEC, top + more));
  } catch {
    // beyond RLIMIT_NOFILE: the table grows as fds come, as it would have anyway
  } finally {
    if (probe >= 0) closeSync(probe);
  }
}
