// Where a hand-over goes: the Unix socket a Resume (or a Restore with go_live) names, opened once and
// checked before anything is sent. The daemon runs as root, so a path a caller names must not let it
// reach what the caller could not: it is resolved once, its directory must lie under the allowed
// prefixes (by its real path, read from the open directory), its last component must be the socket file
// itself (never a symbolic link), and the connection goes to that very file through /proc/self/fd/N, so
// nothing swapped in at the path after the checks is reached. After connect, the receiver's credentials
// (SO_PEERCRED: who called listen()) must be a uid the caller may hand sockets to.
import { readlinkSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';
import * as N from '../kernel/native';
import { SoccrError } from '../../protocol/errors';

/** What a hand-over may reach: per caller (server/policy.ts decides whose rules apply: CallerPolicy.handoverRules). */
export interface HandoverRules {
  /**
   * Lists of directories, all of which must allow the socket: its real path must lie under one
   * directory of each list (the daemon-wide --handover-prefix, the caller's own). No list: anywhere; an
   * empty list: nowhere.
   */
  prefixes: ReadonlyArray<readonly string[]>;
  /** uids the receiver may run as (its SO_PEERCRED); undefined: any */
  receiverUids: readonly number[] | undefined;
}

/** No restriction: an admin's hand-overs under an open daemon-wide policy. */
export const ANY_HANDOVER: HandoverRules = { prefixes: [], receiverUids: undefined };

/** The first list of `rules.prefixes` that does not allow `realPath`, or undefined when all do. */
function refusingPrefixes(rules: HandoverRules, realPath: string): readonly string[] | undefined {
  return rules.prefixes.find((list) => !list.some((p) => underPrefix(realPath, realPrefix(p))));
}

const allowedUnder = (list: readonly string[]): string => (list.length ? `allowed under ${list.join(', ')}` : 'no hand-over directory is allowed');

/** Whether `path` (absolute, normalized) is `prefix` or below it. */
export function underPrefix(path: string, prefix: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return p === '/' || path === p || path.startsWith(`${p}/`);
}

/** A prefix as configured, and as the file system has it now (a configured /var/run/app is /run/app). */
function realPrefix(prefix: string): string {
  try {
    return realpathSync(prefix);
  } catch {
    return posix.normalize(prefix);
  }
}

const refuse = (kind: 'BAD_REQUEST' | 'FORBIDDEN' | 'DELIVERY', message: string, cause?: unknown): never => {
  throw new SoccrError(kind, message, cause);
};

/**
 * An early check of a hand-over path a call names for later (a Restore that goes live at its end), so a
 * path the caller may not use is refused before anything is rebuilt: the same refusals as
 * HandoverTarget.open for what can be told now (the directory's real path where it exists). The
 * hand-over itself checks again, on the file it opens.
 */
export function precheckHandoverPath(path: string, rules: HandoverRules): void {
  if (!path.startsWith('/')) refuse('BAD_REQUEST', `hand-over path ${JSON.stringify(path)} is not absolute`);
  const normal = posix.normalize(path);
  if (underPrefix(normal, '/proc'))
    refuse('BAD_REQUEST', `hand-over path ${path} goes through /proc: name the socket by its own path (e.g. /run/APP/handover.sock)`);
  if (!rules.prefixes.length) return;
  let dir = posix.dirname(normal);
  try {
    dir = realpathSync(dir);
  } catch {
    /* not there yet: judged by its name */
  }
  const refusing = refusingPrefixes(rules, posix.join(dir, posix.basename(normal)));
  if (refusing) refuse('FORBIDDEN', `the policy does not allow hand-over sockets at ${path}: ${allowedUnder(refusing)}`);
}

/** Whether `realDir`, opened again from the root, is the directory open at `dirFd` (same device and inode). */
function sameDirectory(dirFd: number, realDir: string): boolean {
  let fd = -1;
  try {
    fd = N.openat(N.AT_FDCWD, realDir, N.O_PATH | N.O_DIRECTORY | N.O_CLOEXEC);
    const a = N.fstat(dirFd);
    const b = N.fstat(fd);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  } finally {
    if (fd >= 0) N.closeQuietly(fd);
  }
}

/**
 * The socket file a hand-over path names, held open (O_PATH) from the checks to the connect: `connectPath`
 * reaches exactly that file. Close it (once) when the connect is done.
 */
export class HandoverTarget {
  private constructor(
    readonly path: string,
    /** the socket's real path (its directory resolved once, from the open directory) */
    readonly realPath: string,
    private fd: number,
  ) {}

  /**
   * Resolves `path` once and checks it against `rules`. Throws BAD_REQUEST for a path that cannot name
   * a socket file (relative, through /proc, a symbolic link in the last component, not a socket),
   * FORBIDDEN for one outside the allowed prefixes, DELIVERY (as a connect would) when nothing is there.
   */
  static open(path: string, rules: HandoverRules): HandoverTarget {
    if (!path.startsWith('/')) refuse('BAD_REQUEST', `hand-over path ${JSON.stringify(path)} is not absolute`);
    const name = posix.basename(path);
    if (path.endsWith('/') || name === '' || name === '.' || name === '..') refuse('BAD_REQUEST', `hand-over path ${path} names a directory, not a socket`);
    if (underPrefix(posix.normalize(path), '/proc')) {
      refuse('BAD_REQUEST', `hand-over path ${path} goes through /proc: name the socket by its own path (e.g. /run/APP/handover.sock)`);
    }
    // The directory, once: every later step works from this descriptor.
    let dirFd = -1;
    try {
      dirFd = N.openat(N.AT_FDCWD, posix.dirname(path), N.O_PATH | N.O_DIRECTORY | N.O_CLOEXEC);
    } catch (err) {
      const code = err instanceof N.SyscallError ? err.code : String(err);
      if (code === 'ENOENT') refuse('DELIVERY', `nobody listens on ${path}: ENOENT (no directory ${posix.dirname(path)})`, err);
      refuse('BAD_REQUEST', `hand-over path ${path}: its directory cannot be opened: ${code}`, err);
    }
    try {
      let realDir: string;
      try {
        realDir = readlinkSync(`/proc/self/fd/${dirFd}`);
      } catch (err) {
        return refuse('BAD_REQUEST', `hand-over path ${path}: cannot tell where its directory is`, err);
      }
      // Not a path from this root (another mount namespace's, or a directory removed meanwhile).
      if (!realDir.startsWith('/') || realDir.endsWith(' (deleted)'))
        refuse('BAD_REQUEST', `hand-over path ${path}: its directory is not reachable from here (${realDir})`);
      // The real path must lead back to this very directory from the daemon's root: one reached through
      // another mount namespace (/proc/PID/root behind a link) would show a path that names another.
      if (!sameDirectory(dirFd, realDir)) refuse('BAD_REQUEST', `hand-over path ${path}: its directory is not reachable by its own path (${realDir})`);
      const realPath = realDir === '/' ? `/${name}` : `${realDir}/${name}`;
      if (underPrefix(realDir, '/proc')) refuse('BAD_REQUEST', `hand-over path ${path} leads into /proc (${realPath}): name the socket by its own path`);
      const refusing = refusingPrefixes(rules, realPath);
      if (refusing) {
        refuse('FORBIDDEN', `the policy does not allow hand-over sockets at ${path}${realPath !== path ? ` (${realPath})` : ''}: ${allowedUnder(refusing)}`);
      }
      // The last component, without following it: a link would let the path reach any socket.
      let fd = -1;
      try {
        fd = N.openat(dirFd, name, N.O_PATH | N.O_NOFOLLOW | N.O_CLOEXEC);
      } catch (err) {
        const code = err instanceof N.SyscallError ? err.code : String(err);
        if (code === 'ENOENT') refuse('DELIVERY', `nobody listens on ${path}: ENOENT`, err);
        refuse('BAD_REQUEST', `hand-over path ${path} cannot be opened: ${code}`, err);
      }
      try {
        const type = N.fstat(fd).mode & N.S_IFMT;
        if (type === N.S_IFLNK)
          refuse('BAD_REQUEST', `hand-over path ${path} is a symbolic link: name the receiver's socket itself (soccrd never follows a link there)`);
        if (type !== N.S_IFSOCK) refuse('BAD_REQUEST', `hand-over path ${path} is not a socket`);
      } catch (err) {
        N.closeQuietly(fd);
        throw err;
      }
      return new HandoverTarget(path, realPath, fd);
    } finally {
      N.closeQuietly(dirFd);
    }
  }

  /** A path connect(2) takes to reach exactly the file opened (procfs's link to this descriptor). */
  get connectPath(): string {
    if (this.fd < 0) throw new Error(`hand-over target ${this.path} used after close`);
    return `/proc/self/fd/${this.fd}`;
  }

  close(): void {
    if (this.fd >= 0) N.closeQuietly(this.fd);
    this.fd = -1;
  }
}

/**
 * Checks who listens at the other end of a connected hand-over socket (SO_PEERCRED: the credentials of
 * the process that called listen()): FORBIDDEN unless its uid is one `rules` allow. Returns them.
 */
export function checkReceiver(fd: number, path: string, rules: HandoverRules): N.PeerCredentials {
  let cred: N.PeerCredentials;
  try {
    cred = N.peerCredentials(fd);
  } catch (err) {
    return refuse('DELIVERY', `cannot read the credentials of the receiver on ${path}`, err);
  }
  if (rules.receiverUids && !rules.receiverUids.includes(cred.uid)) {
    const whom = rules.receiverUids.length ? `only to uid ${rules.receiverUids.join(', ')}` : 'to no receiver';
    refuse('FORBIDDEN', `the receiver on ${path} runs as uid ${cred.uid} (pid ${cred.pid}): this caller may hand sockets ${whom}; nothing was sent`);
  }
  return cred;
}
