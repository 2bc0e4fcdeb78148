// The state directory (--state-dir): what the daemon keeps on disk (journal, instance id, daemon.json)
// decides, after a crash, which sockets a root daemon resumes, thaws or closes and which processes it
// continues. So only root may be able to change it: the directory and every directory above it must be
// owned by root (or the daemon's own user) and not writable by group or others (a sticky directory such
// as /tmp is fine above it: others cannot rename or remove what is not theirs). And its files are opened
// without following symbolic links, so a link planted there cannot make the daemon write elsewhere.
import { closeSync, constants, lstatSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
import * as path from 'node:path';

const S_ISVTX = 0o1000;

/** Throws, naming the directory and the fix, unless `dir` and its ancestors can be changed only by root. */
export function checkStateDir(dir: string): void {
  const owners = new Set([0, process.geteuid?.() ?? 0]);
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (err) {
    throw new Error(`--state-dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  for (let p = real, self = true; ; p = path.dirname(p), self = false) {
    const st = lstatSync(p);
    const what = self ? `--state-dir ${dir}${real === dir ? '' : ` (${real})`}` : `--state-dir ${dir}: its parent ${p}`;
    if (!st.isDirectory()) throw new Error(`${what} is not a directory`);
    if (!owners.has(st.uid)) {
      throw new Error(`${what} is owned by uid ${st.uid}, who could change what the daemon undoes after a crash: make it root's (chown root ${p})`);
    }
    const openToOthers = (st.mode & 0o022) !== 0 && !(!self && st.mode & S_ISVTX);
    if (openToOthers) {
      throw new Error(
        `${what} is writable by ${st.mode & 0o020 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)}): make it writable by root only (chmod go-w ${p})`,
      );
    }
    if (p === path.dirname(p)) return;
  }
}

/** How a state file is opened: every mode refuses a symbolic link (ELOOP) and is close-on-exec. */
export type StateFileMode = 'read' | 'write' | 'append';

const FLAGS: Record<StateFileMode, number> = {
  read: constants.O_RDONLY,
  write: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  append: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
};
// Node opens every file close-on-exec already.

/** Opens a file of the state directory without following a symbolic link at its last component. */
export function openStateFile(file: string, mode: StateFileMode): number {
  try {
    return openSync(file, FLAGS[mode] | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new Error(`${file} is a symbolic link: the daemon does not follow links in its state directory; remove it`, { cause: err });
    }
    throw err;
  }
}

/** The text of a state file, undefined if there is none; a symbolic link is refused as openStateFile does. */
export function readStateFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openStateFile(file, 'read');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Writes a whole state file (created 0600, truncated), never through a symbolic link. */
export function writeStateFile(file: string, text: string): void {
  const fd = openStateFile(file, 'write');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
