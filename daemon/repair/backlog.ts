// The connections waiting in a listener's accept queue (handshake completed, not yet accepted by the
// owner), taken on the owner's behalf: a listener cannot move to another host, but those connections
// are established ones like any other. Each listener is duplicated from its owner (pidfd_getfd, the same
// open file description), its queue length read from socket diagnostics (idiag_rqueue of a listening
// socket), and exactly that many connections accepted without blocking: what arrives later stays
// queued (the caller's network lock keeps new SYNs out meanwhile). Half-open handshakes (SYN_RECV:
// their peer's final ACK not in yet) are counted, not taken: there is no socket to take yet.
import { fstatSync } from 'node:fs';
import * as N from '../kernel/native';
import type { NetnsHandle } from '../kernel/netns';
import { dumpTcpSockets } from '../kernel/sockdiag';
import type { SocketAddress } from '../../protocol/address';
import { SoccrError, kernelError } from '../../protocol/errors';
import { TcpState } from '../../protocol/saved-state';
import type { ProcessHandle, TcpSocketInfo } from './acquire';
import { localAddress, peerAddress } from './engine';

/** One connection accepted from a listener's queue: our descriptor is its only one. */
export interface AcceptedConnection {
  /** the listener's fd in the owner */
  listenerFd: number;
  fd: number;
  inode: number;
  local: SocketAddress;
  remote: SocketAddress;
}

/** What was found at one listener. */
export interface ListenerBacklog {
  listener: TcpSocketInfo;
  /** connections taken from its queue */
  taken: number;
  /** handshakes still half-open (SYN_RECV), left where they are */
  halfOpen: number;
  /** why nothing could be taken from it (the listener closed or replaced meanwhile), if so */
  failed?: string;
}

/** Whether a half-open handshake (SYN_RECV, local `a`) is for the listener bound to `l`. */
function forListener(a: SocketAddress, l: SocketAddress): boolean {
  if (a.port !== l.port) return false;
  // Both from the same dump, so formatted alike.
  return l.ip === '0.0.0.0' || l.ip === '::' || a.ip === l.ip;
}

/**
 * Accepts, for each listener of `pid`, the connections its queue holds now (at most that many, never
 * blocking). The listeners must be the owner's (ProcessHandle `proc`), their entries from its listing;
 * `netns` is the owner's namespace. Every accepted connection is returned, also when a later step fails
 * (the caller closes them); a listener whose duplicate cannot be made or is no longer that socket is
 * reported, not fatal.
 */
export function acceptBacklogs(
  proc: ProcessHandle,
  netns: NetnsHandle,
  listeners: readonly TcpSocketInfo[],
  accepted: AcceptedConnection[],
): ListenerBacklog[] {
  if (listeners.length === 0) return [];
  const table = dumpTcpSockets(netns);
  if (!table) throw new SoccrError('KERNEL', `pid ${proc.pid}: socket diagnostics could not read its listeners' accept queues`);
  const byInode = new Map(table.map((s) => [s.inode, s]));
  const halfOpen = table.filter((s) => s.state === TcpState.SYN_RECV);
  return listeners.map((l) => {
    const found: ListenerBacklog = { listener: l, taken: 0, halfOpen: halfOpen.filter((s) => forListener(s.local, l.local)).length };
    const now = byInode.get(l.inode);
    if (now?.state !== TcpState.LISTEN) return { ...found, failed: 'it is no longer listening' };
    let dup: number;
    try {
      dup = proc.dupFd(l.fd);
    } catch (err) {
      return { ...found, failed: err instanceof Error ? err.message : String(err) };
    }
    try {
      if (fstatSync(dup).ino !== l.inode) return { ...found, failed: `fd ${l.fd} now names another socket` };
      found.taken = acceptQueued(dup, now.recvQueue, l.fd, accepted);
      return found;
    } finally {
      N.closeQuietly(dup);
    }
  });
}

/** Accepts up to `count` connections from the listener `dup` without blocking; returns how many. */
function acceptQueued(dup: number, count: number, listenerFd: number, accepted: AcceptedConnection[]): number {
  if (count === 0) return 0;
  // The duplicate shares the owner's file status flags: non-blocking for as long as this takes, then
  // as the owner had them.
  const flags = N.fcntl(dup, N.F_GETFL);
  const blocking = (flags & N.O_NONBLOCK) === 0;
  if (blocking) N.fcntl(dup, N.F_SETFL, flags | N.O_NONBLOCK);
  let n = 0;
  try {
    for (; n < count; n++) {
      let fd: number;
      try {
        fd = N.accept(dup, N.SOCK_CLOEXEC);
      } catch (err) {
        if (err instanceof N.SyscallError && (err.code === 'EAGAIN' || err.code === 'ECONNABORTED')) break;
        throw kernelError(`accepting from the listener on fd ${listenerFd}`, err);
      }
      try {
        const local = localAddress(fd);
        accepted.push({ listenerFd, fd, inode: fstatSync(fd).ino, local, remote: peerAddress(fd, local.family) });
      } catch (err) {
        N.closeQuietly(fd);
        throw kernelError(`reading the addresses of a connection accepted from fd ${listenerFd}`, err);
      }
    }
  } finally {
    if (blocking) N.fcntl(dup, N.F_SETFL, flags);
  }
  return n;
}

/** What a checkpoint's header says of a listener whose queue it took (or left). */
export function backlogReason(b: ListenerBacklog): string {
  if (b.failed) return `listener stays; its queued connections could not be taken: ${b.failed}`;
  const half = b.halfOpen ? `; ${b.halfOpen} half-open handshake(s) not taken (no connection yet)` : '';
  return `listener stays; ${b.taken} queued connection(s) taken${half}`;
}
