// What a same-host hand-off takes from the old owner: the live sockets themselves, never frozen and never
// copied. Which fds (those named, or every connected TCP socket, and listening ones when asked; every
// socket --all leaves out is named with its reason), then, while the owner is stopped, our duplicates of
// them in one batch of kernel calls, each checked against what the listing saw.
import { fstatSync } from 'node:fs';
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
}

export interface HandoffChoice {
  sockets: HandoffSocket[];
  /** what --all left out, and why */
  skipped: Array<{ fd: number; kind: string; reason: string }>;
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
  const listed = listTcpSockets(pid);
  if (!sel.all) {
    const byFd = new Map(listed.map((s) => [s.fd, s]));
    const sockets = [...new Set(sel.fds)].map((fd): HandoffSocket => {
      if (!Number.isInteger(fd) || fd < 0) throw new SoccrError('NO_SUCH_FD', `invalid fd ${fd}`);
      const s = byFd.get(fd);
      return s ? fromInfo(s) : { fd, inode: -1, local: unknownAddress, remote: unknownAddress, state: TcpState.CLOSE };
    });
    return { sockets, skipped: [] };
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
  return { sockets, skipped };
}

const unknownAddress: SocketAddress = { family: 'ipv4', ip: '0.0.0.0', port: 0 };

/**
 * Our duplicates of the chosen sockets, in their order, taken in one batch (the owner should be stopped
 * by now, so that its fds no longer change). A duplicate that is not the socket the listing saw (the fd
 * was closed and reused since) or was never listed is described from itself, and must be a TCP socket.
 * On refusal every duplicate is closed, and nothing of the owner's sockets has changed.
 */
export function takeHandoffSockets(proc: ProcessHandle, chosen: HandoffSocket[]): number[] {
  const dups = proc.dupFds(chosen.map((s) => s.fd));
  try {
    chosen.forEach((s, i) => {
      if (s.inode >= 0 && fstatSync(dups[i]).ino === s.inode) return;
      Object.assign(s, describe(proc.pid, s.fd, dups[i]));
    });
    return dups;
  } catch (err) {
    for (const d of dups) N.closeQuietly(d);
    throw err instanceof SoccrError ? err : kernelError(`inspecting the sockets of pid ${proc.pid}`, err);
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
