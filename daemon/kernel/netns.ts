// Running a few synchronous kernel calls inside another network namespace. Namespaces belong to
// threads: the calling (main) thread enters the target, does its work and always comes back. Only
// synchronous code may run inside, so nothing else on this thread can observe the switch.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { CLONE_NEWNET, setns } from './native';
import { SoccrError, kernelError } from '../../protocol/errors';

let homeFd = -1;

function home(): number {
  // Opened lazily, once: the namespace this thread started in.
  if (homeFd < 0) homeFd = openSync('/proc/thread-self/ns/net', 'r');
  return homeFd;
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

/** Calls `fn` with this thread inside the network namespace at `nsPath` (/proc/PID/ns/net, /run/netns/NAME). */
export function inNetns<T>(nsPath: string | undefined, fn: () => T): T {
  if (!nsPath) return fn();
  home(); // opened before leaving home
  let target: number;
  try {
    target = openSync(nsPath, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SoccrError('INVALID_STATE', `network namespace ${nsPath}: ${code ?? String(err)}`, err);
  }
  try {
    return inNetnsFd(target, fn, nsPath);
  } finally {
    closeSync(target);
  }
}

/**
 * A network namespace held open for a series of calls (the sockets of one restore): opened once, and
 * not entered at all when it is the one this thread is in already.
 */
export class NetnsHandle {
  private constructor(
    private fd: number,
    readonly path: string,
    /** the namespace this thread runs in: nothing to enter */
    readonly isHome: boolean,
  ) {}

  static open(nsPath: string): NetnsHandle {
    let fd: number;
    try {
      fd = openSync(nsPath, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SoccrError('INVALID_STATE', `network namespace ${nsPath}: ${code ?? String(err)}`, err);
    }
    const a = fstatSync(fd);
    const b = fstatSync(home());
    return new NetnsHandle(fd, nsPath, a.dev === b.dev && a.ino === b.ino);
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

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
