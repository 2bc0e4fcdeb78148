// Running a few synchronous kernel calls inside another network namespace. Namespaces belong to
// threads: the calling (main) thread enters the target, does its work and always comes back. Only
// synchronous code may run inside, so nothing else on this thread can observe the switch.
//
// A namespace a caller names by path is opened once (openNetnsPath) and then only used through that
// descriptor: the policy compares its identity, the network lock, the journal and the engine use it. No
// path is resolved twice, so nothing swapped in between the checks can redirect a restore.
import { closeSync, openSync } from 'node:fs';
import * as N from './native';
import { CLONE_NEWNET, setns } from './native';
import { SoccrError, kernelError } from '../../protocol/errors';

let homeFd = -1;

function home(): number {
  // Opened lazily, once: the namespace this thread started in.
  if (homeFd < 0) homeFd = openSync('/proc/thread-self/ns/net', 'r');
  return homeFd;
}

let homeId: string | undefined;

/** dev:ino of the namespace this thread started in (the daemon's own). */
export function homeNetnsId(): string {
  if (homeId === undefined) {
    const st = N.fstat(home());
    homeId = `${st.dev}:${st.ino}`;
  }
  return homeId;
}

/**
 * procfs's own links to a process's namespace (/proc/PID/ns/net, /proc/self/ns/net, ...): symbolic links
 * only in name ("magic links" the kernel resolves to the namespace itself), in a tree no user can put a
 * link into (a namespace of another kind there is then refused by its type). Opening them must follow
 * the last component; every other path must not.
 */
const PROC_NS_LINK = /^\/proc\/(?:\d+|self|thread-self)(?:\/task\/\d+)?\/ns\/[a-z_]+$/;

/** The other kinds NS_GET_NSTYPE names (CLONE_NEW* flags), for messages. */
const NS_KINDS = new Map([
  [0x00020000, 'mount'],
  [0x02000000, 'cgroup'],
  [0x04000000, 'UTS'],
  [0x08000000, 'IPC'],
  [0x10000000, 'user'],
  [0x20000000, 'PID'],
  [0x00000080, 'time'],
]);

/** What a file is, in words, from its st_mode (for messages). */
function fileKind(mode: number): string {
  switch (mode & N.S_IFMT) {
    case N.S_IFIFO:
      return 'a FIFO';
    case N.S_IFSOCK:
      return 'a socket';
    case N.S_IFDIR:
      return 'a directory';
    case N.S_IFLNK:
      return 'a symbolic link';
    case 0o100000:
      return 'a regular file';
    default:
      return 'a device or special file';
  }
}

/**
 * Opens the network namespace file at `nsPath` exactly once: O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
 * O_CLOEXEC (a FIFO does not block the open, a symbolic link in the last component is refused; a
 * directory above may be one, e.g. /var/run -> /run), then checked through the descriptor: NS_GET_NSTYPE
 * answers only for nsfs files, and must say CLONE_NEWNET. Returns the fd and the namespace's identity
 * (dev:ino of its nsfs inode). Bad paths are BAD_REQUEST; the fd is never left open on a refusal.
 */
export function openNetnsPath(nsPath: string): { fd: number; dev: number; ino: number } {
  const refuse = (why: string, cause?: unknown): never => {
    throw new SoccrError('BAD_REQUEST', `network namespace ${JSON.stringify(nsPath)}: ${why}`, cause);
  };
  if (!nsPath.startsWith('/')) refuse('not an absolute path (name it as /run/netns/NAME or /proc/PID/ns/net)');
  if (nsPath.includes('\0')) refuse('contains a NUL byte');
  const flags = N.O_RDONLY | N.O_NONBLOCK | N.O_CLOEXEC;
  let fd = -1;
  try {
    fd = N.openat(N.AT_FDCWD, nsPath, flags | (PROC_NS_LINK.test(nsPath) ? 0 : N.O_NOFOLLOW));
  } catch (err) {
    const code = err instanceof N.SyscallError ? err.code : String(err);
    if (code === 'ELOOP') refuse('is a symbolic link: name the namespace file itself (soccrd never follows a link there)', err);
    if (code === 'ENOENT') refuse('does not exist', err);
    if (code === 'ENOTDIR') refuse('a component of the path is not a directory', err);
    refuse(`cannot be opened: ${code}`, err);
  }
  try {
    let type: number;
    try {
      type = N.ioctlNoArg(fd, N.NS_GET_NSTYPE);
    } catch (err) {
      return refuse(`not a namespace (it is ${fileKind(N.fstat(fd).mode)})`, err);
    }
    if (type !== CLONE_NEWNET) refuse(`a ${NS_KINDS.get(type) ?? `0x${type.toString(16)}`} namespace, not a network namespace`);
    const st = N.fstat(fd);
    return { fd, dev: st.dev, ino: st.ino };
  } catch (err) {
    N.closeQuietly(fd);
    throw err;
  }
}

/** Calls `fn` with this thread inside the network namespace open at `nsFd`. */
export function inNetnsFd<T>(nsFd: number, fn: () => T, what = `namespace fd ${nsFd}`): T {
  try {
    setns(nsFd, CLONE_NEWNET);
  } catch (err) {
    throw kernelError(`entering network namespace ${what}`, err);
  }
  try {
    return fn();
  } finally {
    setns(home(), CLONE_NEWNET);
  }
}

/**
 * A network namespace held open for a series of calls (the sockets of one restore): opened once, and
 * not entered at all when it is the one this thread is in already.
 */
export class NetnsHandle {
  private constructor(
    private fd: number,
    /** the path it was named by (for messages and the journal; never opened again) */
    readonly path: string,
    /** the nsfs inode's device and number: what identifies the namespace */
    readonly dev: number,
    readonly ino: number,
  ) {}

  /** Opens the namespace named by `nsPath` once, as openNetnsPath does (BAD_REQUEST for anything else). */
  static open(nsPath: string): NetnsHandle {
    const { fd, dev, ino } = openNetnsPath(nsPath);
    return new NetnsHandle(fd, nsPath, dev, ino);
  }

  /**
   * Takes over `fd`, a descriptor of a namespace got some other way (PIDFD_GET_NET_NAMESPACE), after
   * checking that it is a network namespace; closes it on refusal.
   */
  static adopt(fd: number, what: string): NetnsHandle {
    try {
      if (N.ioctlNoArg(fd, N.NS_GET_NSTYPE) !== CLONE_NEWNET) throw new SoccrError('KERNEL', `${what} is not a network namespace`);
      const st = N.fstat(fd);
      return new NetnsHandle(fd, what, st.dev, st.ino);
    } catch (err) {
      N.closeQuietly(fd);
      throw kernelError(`the network namespace of ${what}`, err);
    }
  }

  /** The namespace's identity, dev:ino (two paths to one namespace share it). */
  get id(): string {
    return `${this.dev}:${this.ino}`;
  }

  /** the namespace this thread runs in: nothing to enter */
  get isHome(): boolean {
    return this.id === homeNetnsId();
  }

  /** A second descriptor of the same namespace (close-on-exec), for a holder that outlives this handle. */
  dupFd(): number {
    if (this.fd < 0) throw new Error(`network namespace ${this.path} used after close`);
    return N.fcntl(this.fd, N.F_DUPFD_CLOEXEC, 0);
  }

  /**
   * For a caller that enters the namespace within a batch of kernel calls: its fd and the fd of this
   * thread's own namespace to come back to; undefined when there is nothing to enter.
   */
  enterFds(): { target: number; home: number } | undefined {
    if (this.fd < 0) throw new Error(`network namespace ${this.path} used after close`);
    return this.isHome ? undefined : { target: this.fd, home: home() };
  }

  run<T>(fn: () => T): T {
    if (this.fd < 0) throw new Error(`network namespace ${this.path} used after close`);
    return this.isHome ? fn() : inNetnsFd(this.fd, fn, this.path);
  }

  /** Closes the descriptor; once (later calls do nothing). */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
