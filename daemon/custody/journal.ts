// The crash journal: what a daemon killed at any moment leaves for the next one to undo. JSON lines in
// <state-dir>/journal.jsonl, each appended and fsync'd BEFORE the step it makes undoable (freezing
// sockets, stopping their owner, locking the network), and a line when a session ends or a lock is
// lifted, so that the next daemon does not touch it again. When nothing is left to undo, the file is
// emptied; long-lived sessions renewing their leases get it rewritten (compacted) now and then.
// Recovery (recovery.ts) reads it at start. docs/crash-safety.md describes the whole.
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync, readlinkSync, renameSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { SoccrError } from '../../protocol/errors';
import { type NetnsHandle, homeNetnsId } from '../kernel/netns';
import type { Logger } from '../log';
import type { LockTuple } from './netlock';
import { openStateFile, readStateFile } from './state-dir';

export const JOURNAL_FILE = 'journal.jsonl';
/** Which daemon the journal belongs to (pid and start time): a second daemon on the same state dir is refused. */
const OWNER_FILE = 'journal.owner';
const FORMAT = 1;
/** Records appended since the last rewrite after which the file is compacted. */
const COMPACT_AFTER = 1000;

/**
 * A network namespace as a restarted daemon can find it again: its nsfs identity (dev, ino), plus the
 * path it was named by (restore targets: the path given; '' for the daemon's own) or the pid whose
 * namespace it was (source owners: /proc/PID/ns/net dies with the process, the identity does not).
 */
export interface NetnsRef {
  dev: number;
  ino: number;
  path?: string;
  pid?: number;
}

export interface JournalConn {
  /** the fd in the owner */
  fd: number;
  /** the socket's inode: a different socket that reused the fd number is never touched */
  inode: number;
  /** the user's SO_REUSEADDR, which leaving repair mode clears */
  reuseAddr: boolean;
}

/** Written before a source session's first step (stop, lock, freeze). */
export interface SourceRecord {
  id: string;
  pid: number;
  /** the owner's start time (field 22 of /proc/PID/stat): tells a reused pid from the owner */
  startTime: number;
  leaseMs: number;
  /** lease expiry, Unix ms */
  expires: number;
  /** the call asked to stop the owner (the `stop` record says it was about to be) */
  stopOwner: boolean;
  conns: JournalConn[];
  /** the identity that created the session (a recovered session stays its own); absent in older journals: admins only */
  createdBy?: string;
}

export type SessionEnd = 'RESUMED' | 'RELEASED' | 'ABORTED' | 'EXPIRED';

type JournalRecord =
  | ({ t: 'source' } & SourceRecord)
  | { t: 'stop'; id: string }
  | { t: 'streamed'; id: string; expires: number }
  | { t: 'lease'; id: string; expires: number }
  | { t: 'end'; id: string; state: SessionEnd; unlockAt?: number }
  | { t: 'lock'; id: string; kind: 'source' | 'restore'; table: string; ns: NetnsRef; tuples: LockTuple[] }
  | { t: 'unlock'; id: string };

/** An open source session as journaled. */
export interface JournaledSource extends SourceRecord {
  /** the owner was (about to be) stopped by the daemon */
  stopped: boolean;
  /** its Checkpoint stream was sent whole: a caller may still Release it */
  streamed: boolean;
}

/** Lock entries not known to be lifted, of one session in one namespace. */
export interface JournaledLock {
  id: string;
  kind: 'source' | 'restore';
  table: string;
  ns: NetnsRef;
  tuples: LockTuple[];
  /** a released source keeps its lock until then (grace period) */
  unlockAt?: number;
}

/**
 * A namespace the call holds open (undefined: the daemon's own), as the journal records it: its identity
 * from the descriptor, the path it was named by ('' for the daemon's own) or, for a source owner's,
 * the owner's pid.
 */
export function netnsRef(ns: NetnsHandle | undefined, pid?: number): NetnsRef {
  const [dev, ino] = (ns?.id ?? homeNetnsId()).split(':').map(Number);
  return pid === undefined ? { dev, ino, path: ns?.path ?? '' } : { dev, ino, pid };
}

/** The inode of the socket behind a descriptor we hold. */
export function socketInode(fd: number): number {
  return fstatSync(fd).ino;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or -1 if the process is gone. */
export function processStartTime(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return -1;
  }
}

/** The socket inode behind /proc/PID/fd/N, or -1. */
export function procFdInode(pid: number, fd: number): number {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

export class Journal {
  readonly file: string;
  private fd: number;
  private readonly sources = new Map<string, JournaledSource>();
  private readonly locks = new Map<string, JournaledLock[]>();
  private appended = 0;

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dir, JOURNAL_FILE);
    this.load();
    this.fd = openStateFile(this.file, 'append');
  }

  /**
   * Opens (creating) the journal in `dir` and reads what a previous run left. Refuses while the daemon
   * that wrote it still runs: recovering would resume sessions it holds.
   */
  static open(dir: string, log: Logger): Journal {
    const ownerFile = path.join(dir, OWNER_FILE);
    try {
      const o = JSON.parse(readStateFile(ownerFile) ?? '') as { pid?: number; startTime?: number };
      if (typeof o.pid === 'number' && o.pid !== process.pid && o.startTime !== undefined && o.startTime >= 0 && processStartTime(o.pid) === o.startTime) {
        throw new Error(`state directory ${dir} is in use by the running daemon ${o.pid}`);
      }
    } catch (err) {
      if (err instanceof Error && (err.message.includes('is in use') || (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ELOOP')) throw err;
      /* no owner file, or an unreadable one: no other daemon */
    }
    const fd = openStateFile(ownerFile, 'write');
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid) }));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return new Journal(dir, log);
  }

  private load(): void {
    const text = readStateFile(this.file);
    if (text === undefined) return;
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let r: JournalRecord;
      try {
        const { v, ...rec } = JSON.parse(line) as JournalRecord & { v?: number };
        if (v !== FORMAT) this.log.warn('journal: record of another format version', { line: i + 1, version: v });
        r = rec;
      } catch {
        // Only the last line can be torn (a power cut mid-write): its step had not begun.
        this.log.warn('journal: unreadable line skipped', { line: i + 1, last: i >= lines.length - 2 });
        return;
      }
      this.apply(r);
    });
  }

  /** Replays one record into the model. */
  private apply(r: JournalRecord): void {
    switch (r.t) {
      case 'source': {
        const { t: _t, ...rec } = r;
        this.sources.set(r.id, { ...rec, stopped: false, streamed: false });
        break;
      }
      case 'stop': {
        const s = this.sources.get(r.id);
        if (s) s.stopped = true;
        break;
      }
      case 'streamed':
      case 'lease': {
        const s = this.sources.get(r.id);
        if (s) {
          s.expires = r.expires;
          if (r.t === 'streamed') s.streamed = true;
        }
        break;
      }
      case 'end':
        this.sources.delete(r.id);
        if (r.unlockAt !== undefined) for (const l of this.locks.get(r.id) ?? []) l.unlockAt = r.unlockAt;
        break;
      case 'lock': {
        const { t: _t, ...rec } = r;
        this.locks.set(r.id, [...(this.locks.get(r.id) ?? []), rec]);
        break;
      }
      case 'unlock':
        this.locks.delete(r.id);
        break;
      default:
        break;
    }
  }

  /** Appends a record and makes it durable; throws (SoccrError KERNEL) if it could not be. */
  private append(r: JournalRecord, sync = true): void {
    try {
      writeSync(this.fd, `${JSON.stringify({ v: FORMAT, ...r })}\n`);
      if (sync) fdatasyncSync(this.fd);
    } catch (err) {
      throw new SoccrError('KERNEL', `crash journal ${this.file}: ${(err as Error).message}`, err);
    }
    this.apply(r);
    this.appended++;
    // An unsynced record is written where time counts: its compaction (a sync) waits for tidy().
    if (sync) this.maybeCompact();
  }

  /** Compacts what handedOff left as it was (after the freeze it was written in). */
  tidy(): void {
    this.maybeCompact();
  }

  /** Empties the file when nothing is left to undo; rewrites it when it grew long. */
  private maybeCompact(): void {
    try {
      if (this.sources.size === 0 && this.locks.size === 0) {
        if (fstatSync(this.fd).size > 0) {
          ftruncateSync(this.fd, 0);
          fdatasyncSync(this.fd);
        }
        this.appended = 0;
      } else if (this.appended >= COMPACT_AFTER) {
        this.rewrite();
      }
    } catch (err) {
      this.log.warn('journal: compaction failed', { error: (err as Error).message });
    }
  }

  /** Writes the model alone to a new file that atomically replaces the journal. */
  rewrite(): void {
    const tmp = `${this.file}.tmp`;
    const records: JournalRecord[] = [];
    for (const s of this.sources.values()) {
      const { stopped, streamed, ...rec } = s;
      records.push({ t: 'source', ...rec });
      if (stopped) records.push({ t: 'stop', id: s.id });
      if (streamed) records.push({ t: 'streamed', id: s.id, expires: s.expires });
    }
    for (const list of this.locks.values()) {
      for (const { unlockAt: _u, ...l } of list) records.push({ t: 'lock', ...l });
      const unlockAt = list.find((l) => l.unlockAt !== undefined)?.unlockAt;
      if (unlockAt !== undefined) records.push({ t: 'end', id: list[0].id, state: 'RELEASED', unlockAt });
    }
    const fd = openStateFile(tmp, 'write');
    try {
      writeSync(fd, records.map((r) => `${JSON.stringify({ v: FORMAT, ...r })}\n`).join(''));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dirFd = openSync(this.dir, 'r');
    try {
      fdatasyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    closeSync(this.fd);
    this.fd = openStateFile(this.file, 'append');
    this.appended = 0;
  }

  // ---- what the previous run left (recovery) ---------------------------------------------------

  openSources(): JournaledSource[] {
    return [...this.sources.values()].map((s) => ({ ...s, conns: [...s.conns] }));
  }

  openLocks(): JournaledLock[] {
    return [...this.locks.values()].flat().map((l) => ({ ...l, tuples: [...l.tuples] }));
  }

  /**
   * After recovery: the journal holds exactly what the new run took over (re-adopted sessions, locks
   * still in their grace period), written atomically.
   */
  reset(sources: JournaledSource[], locks: JournaledLock[]): void {
    this.sources.clear();
    this.locks.clear();
    for (const s of sources) this.sources.set(s.id, s);
    for (const l of locks) this.locks.set(l.id, [...(this.locks.get(l.id) ?? []), l]);
    if (this.sources.size === 0 && this.locks.size === 0) this.maybeCompact();
    else this.rewrite();
  }

  // ---- steps of this run -----------------------------------------------------------------------

  /** Before a source session's first step. */
  beginSource(r: SourceRecord): void {
    this.append({ t: 'source', ...r });
  }

  /** Before the owner is sent SIGSTOP. */
  stopping(id: string): void {
    this.append({ t: 'stop', id });
  }

  /** Before entries go into a lock table. */
  locked(id: string, kind: 'source' | 'restore', table: string, ns: NetnsRef, tuples: readonly LockTuple[]): void {
    this.append({ t: 'lock', id, kind, table, ns, tuples: [...tuples] });
  }

  /** The Checkpoint stream was sent whole. */
  streamed(id: string, expires: number): void {
    if (this.sources.has(id)) this.append({ t: 'streamed', id, expires });
  }

  lease(id: string, expires: number): void {
    if (this.sources.has(id)) this.append({ t: 'lease', id, expires });
  }

  /**
   * A source session ended: after its sockets resumed (RESUMED, EXPIRED, ABORTED), or before they are
   * let go frozen (RELEASED, with the end of the lock's grace period).
   */
  ended(id: string, state: SessionEnd, unlockAt?: number): void {
    if (this.sources.has(id)) this.append({ t: 'end', id, state, ...(unlockAt !== undefined ? { unlockAt } : {}) });
  }

  /**
   * A hand-off's new owner holds the sockets (RELEASED: its owner is never to be continued), written but
   * not synced: the record must outlive the daemon, not the machine (after a crash of the machine there
   * is no stopped owner left to continue), and the hand-off writes it while the owner is stopped, where a
   * sync would add milliseconds to the freeze. Nor is the journal compacted then: tidy() does it later.
   */
  handedOff(id: string): void {
    if (this.sources.has(id)) this.append({ t: 'end', id, state: 'RELEASED' }, false);
  }

  /** After a session's lock entries were removed. */
  unlocked(id: string): void {
    if (this.locks.has(id)) this.append({ t: 'unlock', id });
  }

  /**
   * At a clean exit, once the lock tables are removed: every lock is gone. Source sessions that could
   * not be resumed stay journaled for the next run.
   */
  shutdown(): void {
    try {
      for (const id of [...this.locks.keys()]) this.unlocked(id);
      this.maybeCompact();
    } catch (err) {
      this.log.error('journal: writing the shutdown failed', { error: (err as Error).message });
    }
    closeSync(this.fd);
    this.fd = -1;
  }

  /** Records (non-empty lines) currently in the file: for tests and inspection. */
  static records(dir: string): unknown[] {
    const f = path.join(dir, JOURNAL_FILE);
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as unknown);
  }
}

// ---- fault injection (tests) ---------------------------------------------------------------------

const CRASH_AT = process.env.SOCCRD_CRASH_AT ?? '';

/**
 * Test-only: with SOCCRD_CRASH_AT=<step> in the environment, the daemon kills itself (SIGKILL, nothing
 * cleaned up) right after that step: checkpoint.after-journal, checkpoint.after-lock,
 * checkpoint.after-freeze, checkpoint.mid-stream, checkpoint.after-stream, restore.after-lock,
 * restore.after-first-socket, restore.held, handoff.after-stop.
 */
export function crashPoint(step: string): void {
  if (CRASH_AT !== step) return;
  try {
    writeSync(2, `soccrd: SOCCRD_CRASH_AT=${step}: killing myself\n`);
  } catch {
    /* stderr gone */
  }
  process.kill(process.pid, 'SIGKILL');
}
