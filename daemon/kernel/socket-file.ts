// The file of a listening Unix socket: what may be at its path before the listener binds there, and its
// mode and group after. Nothing here follows a symbolic link or removes a file that is not a socket: a
// path the operator pointed at the wrong file must cost an error message, not the file.
import { Stats, chmodSync, chownSync, closeSync, constants, fstatSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** open(2)'s O_PATH (Linux, 010000000 on x86 and arm): a descriptor of the file itself, whatever its type; node has no name for it. */
const O_PATH = 0o10000000;
/** How long a socket file's listener may take to answer a connect before it is taken to be alive but busy. */
const PROBE_TIMEOUT_MS = 2000;

/** What a file is, in words, for an error message. */
function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a socket';
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Whether anything listens on the socket file at `path`. Only ECONNREFUSED means nobody does: a listener
 * whose backlog is full answers EAGAIN, and one too busy to answer at all is alive too.
 */
function probeListener(path: string): Promise<'listening' | 'backlog full' | 'no answer' | 'refused' | 'gone'> {
  return new Promise((resolve, reject) => {
    const probe = connect(path);
    const done = (how: 'listening' | 'backlog full' | 'no answer' | 'refused' | 'gone'): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(how);
    };
    const timer = setTimeout(() => done('no answer'), PROBE_TIMEOUT_MS);
    probe.once('connect', () => done('listening'));
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') {
        done('refused');
        return;
      }
      if (err.code === 'EAGAIN') {
        done('backlog full');
        return;
      }
      if (err.code === 'ENOENT') {
        done('gone');
        return;
      }
      clearTimeout(timer);
      reject(new Error(`cannot tell whether anything listens on ${path}: ${err.code ?? err.message}`));
    });
  });
}

/**
 * Makes `path` free for a listener to bind: nothing is there, or a socket file whose listener is gone,
 * which is removed (resolves true then). Anything else is an error naming the path: a live listener
 * (also one whose backlog is full; code EADDRINUSE), or a regular file, FIFO, symbolic link, directory
 * or device (code EEXIST).
 */
export async function claimSocketPath(path: string): Promise<boolean> {
  const before = lstatOrUndefined(path);
  if (!before) return false;
  if (!before.isSocket()) throw Object.assign(new Error(`${path} is ${fileKind(before)}, not a socket: remove it or listen elsewhere`), { code: 'EEXIST' });
  const how = await probeListener(path);
  if (how === 'gone') return false;
  if (how !== 'refused') {
    const why = how === 'listening' ? 'it accepted a connection' : how === 'backlog full' ? 'its backlog is full' : `no answer within ${PROBE_TIMEOUT_MS} ms`;
    throw Object.assign(new Error(`another process is listening on ${path} (${why})`), { code: 'EADDRINUSE' });
  }
  // Only the very file found stale: not one that replaced it meanwhile.
  const now = lstatOrUndefined(path);
  if (!now) return false;
  if (!now.isSocket() || now.ino !== before.ino || now.dev !== before.dev) throw new Error(`${path} changed while it was checked: start again`);
  unlinkSync(path);
  return true;
}

/**
 * Gives the socket file at `path` group `gid` (if given), then `mode`, through a descriptor of the file
 * itself (O_PATH | O_NOFOLLOW; changed by its /proc/self/fd link, which reaches exactly that file): a
 * symbolic link or anything else put at the path since the bind is refused, never followed.
 */
export function restrictSocketFile(path: string, mode: number, gid?: number): void {
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isSocket()) throw new Error(`${path} is ${fileKind(st)} now, not the socket just bound there`);
    const self = `/proc/self/fd/${fd}`;
    if (gid !== undefined) chownSync(self, -1, gid);
    chmodSync(self, mode);
  } finally {
    closeSync(fd);
  }
}

/** Removes the socket file at `path` if one is there (a listener that stops); anything else stays. */
export function removeSocketFile(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* already gone */
  }
}
