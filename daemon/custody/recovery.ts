// Recovery at start, from the crash journal (journal.ts) an earlier run left: no connection stays
// frozen, no lock entry stays behind. Runs before the daemon serves.
//
// - Every source session still open: each connection is taken again from its owner (pidfd_open +
//   pidfd_getfd) and touched only if its socket inode is the journaled one; an owner that exited (or
//   whose pid now names another process) is dropped, its sockets died with it.
//   - A session whose Checkpoint stream was sent whole and whose lease has not ended is taken over as
//     it was: same id, FROZEN, expiring at its journaled lease end (a migration's orchestrator may still
//     Release it once the destination is live, or Resume it).
//   - Any other (the checkpoint never completed, or its lease has passed) is resumed at once: lock
//     entries lifted, repair mode off on every socket still in it, the user's SO_REUSEADDR back, and
//     the owner continued if the daemon had stopped it.
// - Lock entries: in every journaled namespace, only what the taken-over sessions need stays (in one
//   transaction: no gap), plus a released session's entries until its grace period ends; with nothing
//   to keep, the table goes. The daemon's own namespace is done by NetworkLock.start.
// - The journal is rewritten to hold exactly what was taken over.
// Restore sessions need nothing: their sockets were in repair mode and vanished silently with the daemon.
import { readdirSync, statSync } from 'node:fs';
import { NetnsHandle, homeNetnsId } from '../kernel/netns';
import { ProcessHandle } from '../repair/acquire';
import { localAddress, peerAddress, readTcpInfoHead } from '../repair/engine';
import { Journal, JournaledLock, JournaledSource, NetnsRef, processStartTime, socketInode } from './journal';
import type { Logger } from '../log';
import * as N from '../kernel/native';
import type { LockTuple, NetworkLock } from './netlock';
import type { ConnectionSummary, SessionManager } from './sessions';
import { thawSource } from './thaw';

interface TakenConn {
  fd: number;
  dup: number;
  reuseAddr: boolean;
  /** still in repair mode */
  frozen: boolean;
}

interface SourcePlan {
  rec: JournaledSource;
  proc: ProcessHandle | undefined;
  conns: TakenConn[];
  readopt: boolean;
}

interface NamespacePlan {
  /** undefined: the daemon's own */
  path: string | undefined;
  /** the namespace, opened once when found (undefined: the daemon's own); closed once apply has used it */
  ns: NetnsHandle | undefined;
  keep: LockTuple[];
  /** tables journaled there (an earlier run may have had another --lock-table) */
  tables: Set<string>;
}

export interface RecoveryPlan {
  /** what stays locked in the daemon's own namespace: give it to NetworkLock.start */
  keepOwn: LockTuple[];
  /** lifts, resumes and takes over; the journal ends up holding only what was taken over */
  apply(netlock: NetworkLock | undefined, sessions: SessionManager): void;
}

/**
 * Where the namespace is now: 'own', the namespace opened (through a path that reaches it, and checked
 * to be that very namespace on the descriptor), or null when it is gone (its table went with it). Tried
 * in order: the daemon's own, the journaled path, /proc/PID/ns/net of the journaled pid, /run/netns/*,
 * then every process's.
 */
function findNetns(ns: NetnsRef): NetnsHandle | 'own' | null {
  const found = (p: string): NetnsHandle | undefined => {
    try {
      // A cheap look first (every process's namespace may be tried), then the one open that counts.
      const st = statSync(p);
      if (st.dev !== ns.dev || st.ino !== ns.ino) return undefined;
      const h = NetnsHandle.open(p);
      if (h.dev === ns.dev && h.ino === ns.ino) return h;
      h.close();
    } catch {
      /* not there, or not a namespace now */
    }
    return undefined;
  };
  if (homeNetnsId() === `${ns.dev}:${ns.ino}`) return 'own';
  const candidates = function* (): Generator<string> {
    if (ns.path) yield ns.path;
    if (ns.pid) yield `/proc/${ns.pid}/ns/net`;
    const list = (dir: string): string[] => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    };
    for (const name of list('/run/netns')) yield `/run/netns/${name}`;
    for (const pid of list('/proc').filter((n) => /^\d+$/.test(n))) yield `/proc/${pid}/ns/net`;
  };
  for (const p of candidates()) {
    const h = found(p);
    if (h) return h;
  }
  return null;
}

/** Takes a journaled source session's sockets back from their owner, checking each is the same socket. */
function takeBack(rec: JournaledSource, now: number, log: Logger): SourcePlan {
  const plan: SourcePlan = { rec, proc: undefined, conns: [], readopt: false };
  try {
    plan.proc = ProcessHandle.open(rec.pid);
  } catch (err) {
    log.warn('recovery: the owner is gone; its sockets went with it', { session: rec.id, pid: rec.pid, error: err });
    return plan;
  }
  if (rec.startTime >= 0 && processStartTime(rec.pid) !== rec.startTime) {
    log.warn('recovery: the pid now names another process; nothing of it is touched', { session: rec.id, pid: rec.pid });
    plan.proc.close();
    plan.proc = undefined;
    return plan;
  }
  for (const c of rec.conns) {
    let dup: number;
    try {
      dup = plan.proc.dupFd(c.fd);
    } catch (err) {
      log.warn('recovery: the fd is closed; its socket is not ours to touch', { session: rec.id, pid: rec.pid, fd: c.fd, error: err });
      continue;
    }
    let inode = -1;
    try {
      inode = socketInode(dup);
    } catch {
      /* reported below */
    }
    if (inode !== c.inode) {
      N.closeQuietly(dup);
      log.warn('recovery: the fd now names another socket; it is not touched', { session: rec.id, pid: rec.pid, fd: c.fd, journaled: c.inode, found: inode });
      continue;
    }
    let frozen = false;
    try {
      frozen = N.getsockoptInt(dup, N.SOL_TCP, N.TCP.REPAIR) !== 0;
    } catch {
      /* not TCP any more: nothing to resume */
    }
    plan.conns.push({ fd: c.fd, dup, reuseAddr: c.reuseAddr, frozen });
  }
  plan.readopt = rec.streamed && rec.expires > now && plan.conns.length > 0;
  return plan;
}

function summaryOf(pid: number, c: TakenConn): ConnectionSummary {
  const local = localAddress(c.dup);
  const remote = peerAddress(c.dup, local.family);
  const ioctl = (req: number): number => {
    try {
      return N.ioctlInt(c.dup, req);
    } catch {
      return 0;
    }
  };
  return {
    id: `${pid}:${c.fd}`,
    fd: c.fd,
    local,
    remote,
    state: readTcpInfoHead(c.dup).state,
    recvQueueLen: ioctl(N.SIOCINQ),
    sendQueueLen: ioctl(N.SIOCOUTQ),
    delivered: false,
  };
}

/** Reads the journal, takes the sockets back and decides; nothing is changed yet (see apply). */
export function planRecovery(journal: Journal, log: Logger, now = Date.now()): RecoveryPlan {
  const sources = journal.openSources();
  const locks = journal.openLocks();
  if (sources.length === 0 && locks.length === 0) return { keepOwn: [], apply: () => undefined };
  log.info('recovery: the crash journal holds work of an earlier run', { sources: sources.length, locks: locks.length });

  const plans = sources.map((rec) => takeBack(rec, now, log));
  const readopted = new Set(plans.filter((p) => p.readopt).map((p) => p.rec.id));
  const namespaces = new Map<string, NamespacePlan>();
  /** locks this run takes over: the re-adopted sessions', and released ones' still in grace */
  const kept: Array<{ lock: JournaledLock; nsKey: string }> = [];
  for (const l of locks) {
    const where = findNetns(l.ns);
    if (where === null) {
      log.info('recovery: a journaled namespace is gone, and its lock entries with it', { session: l.id, ns: l.ns });
      continue;
    }
    const nsKey = `${l.ns.dev}:${l.ns.ino}`;
    let np = namespaces.get(nsKey);
    if (!np) {
      const ns = where === 'own' ? undefined : where;
      np = { path: ns?.path, ns, keep: [], tables: new Set() };
      namespaces.set(nsKey, np);
    } else if (where !== 'own') {
      where.close(); // the same namespace, found again for another session's entries
    }
    np.tables.add(l.table);
    const graced = !readopted.has(l.id) && l.unlockAt !== undefined && l.unlockAt > now + 50;
    if (readopted.has(l.id) || graced) {
      np.keep.push(...l.tuples);
      kept.push({ lock: l, nsKey });
    }
  }
  const own = [...namespaces.values()].find((np) => np.path === undefined);

  return {
    keepOwn: own?.keep ?? [],
    apply(netlock: NetworkLock | undefined, sessions: SessionManager): void {
      // 1. Lock entries: what nobody needs goes, before any socket resumes (its window probe must pass).
      const keyOf = new Map<string, string>();
      for (const [nsKey, np] of namespaces) {
        if (!netlock) {
          log.error('recovery: stale lock entries cannot be removed: the network lock does not work here', { netns: np.path ?? 'own' });
          np.ns?.close();
          continue;
        }
        try {
          keyOf.set(nsKey, np.ns === undefined ? netlock.keyOf(undefined) : netlock.reconcile(np.ns, np.keep));
          for (const t of np.tables) if (t !== netlock.table) netlock.dropTable(np.ns, t);
          log.info('recovery: lock entries reconciled', { netns: np.path ?? 'own', kept: np.keep.length });
        } catch (err) {
          log.error('recovery: reconciling lock entries failed', { netns: np.path ?? 'own', error: err });
        } finally {
          // The lock holds its own descriptor of every namespace it keeps entries in.
          np.ns?.close();
        }
      }
      // 2. Sessions: resumed at once, or taken over as they were.
      const adopted: JournaledSource[] = [];
      for (const p of plans) {
        const { rec } = p;
        if (p.readopt) {
          const lockList = kept.filter((k) => k.lock.id === rec.id);
          const key = lockList.length ? keyOf.get(lockList[0].nsKey) : undefined;
          const tuples = lockList.flatMap((k) => k.lock.tuples);
          try {
            const conns = p.conns.map((c) => ({ sock: { fd: c.dup, reuseAddr: c.reuseAddr }, summary: summaryOf(rec.pid, c) }));
            const owner = rec.stopped ? p.proc : undefined;
            if (!owner) p.proc?.close();
            sessions.adoptSource(rec.id, rec.pid, rec.leaseMs, rec.expires, conns, key !== undefined ? { key, tuples } : undefined, owner, rec.createdBy);
            adopted.push({ ...rec, conns: rec.conns.filter((c) => p.conns.some((t) => t.fd === c.fd)) });
            log.info('recovery: source session taken over, FROZEN until its lease ends', {
              session: rec.id,
              pid: rec.pid,
              connections: conns.length,
              leaseEndsInMs: rec.expires - Date.now(),
            });
            continue;
          } catch (err) {
            log.error('recovery: taking the session over failed: resuming it', { session: rec.id, error: err });
            if (key !== undefined && netlock) netlock.unlock(key, tuples);
          }
        }
        // Only what is still in repair mode is resumed; every copy is closed.
        const frozen = p.conns.filter((c) => c.frozen);
        for (const c of p.conns) if (!c.frozen) N.closeQuietly(c.dup);
        const thawed = thawSource({ sockets: frozen.map((c) => ({ fd: c.dup, reuseAddr: c.reuseAddr })), stoppedOwner: rec.stopped ? p.proc : undefined });
        thawed.errors.forEach((err, i) => {
          if (err) log.error('recovery: resuming a socket failed', { session: rec.id, pid: rec.pid, fd: frozen[i].fd, error: err });
        });
        const resumed = thawed.errors.filter((err) => err === undefined).length;
        const continued = thawed.ownerContinued;
        p.proc?.close();
        log.info('recovery: source session resumed at its owner', {
          session: rec.id,
          pid: rec.pid,
          resumed,
          taken: p.conns.length,
          journaled: rec.conns.length,
          ownerContinued: continued,
          streamed: rec.streamed,
        });
      }
      // 3. Released sessions' entries stay until their grace period ends.
      const graced = kept.filter((k) => !readopted.has(k.lock.id));
      for (const { lock, nsKey } of graced) {
        const key = keyOf.get(nsKey);
        if (!netlock || key === undefined) continue;
        setTimeout(
          () => {
            netlock.unlock(key, lock.tuples);
            try {
              journal.unlocked(lock.id);
            } catch (err) {
              log.error('journal: unlock not recorded', { error: err });
            }
          },
          Math.max(0, (lock.unlockAt ?? 0) - Date.now()),
        ).unref();
      }
      // 4. The journal holds what this run took over, and nothing else.
      journal.reset(
        adopted,
        kept.filter((k) => keyOf.has(k.nsKey) && (readopted.has(k.lock.id) ? adopted.some((a) => a.id === k.lock.id) : true)).map((k) => k.lock),
      );
      log.info('recovery done', { takenOver: adopted.length, resumed: plans.length - adopted.length, graceLocks: graced.length });
    },
  };
}
