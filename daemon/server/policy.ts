// What may be touched: which processes may be checkpointed (by uid, cgroup path prefix or pid) and which
// network namespaces may be restored into, where restored sockets may be handed over and to whom. By
// default everything, for callers that may call at all. And how much one caller may hold at once:
// concurrent calls and active sessions.
import { readFileSync, statSync } from 'node:fs';
import type { HandoverRules } from '../custody/handover-target';
import { type NetnsHandle, homeNetnsId } from '../kernel/netns';
import { SoccrError } from '../../protocol/errors';

export interface TargetPolicy {
  /** uids whose processes may be checkpointed; empty: any */
  checkpointUids: number[];
  /** cgroup v2 path prefixes (as in /proc/PID/cgroup, e.g. /system.slice/app.service); empty: any */
  checkpointCgroups: string[];
  /** pids that may be checkpointed; empty: any */
  checkpointPids: number[];
  /** namespaces (paths, compared by namespace identity) that may be restored into; empty: any */
  restoreNetns: string[];
  /** directories under which hand-over sockets may be named (compared by real path); empty: any */
  handoverPrefixes: string[];
  /** uids a hand-over's receiver may run as (its SO_PEERCRED); empty: any */
  receiverUids: number[];
}

export const OPEN_POLICY: TargetPolicy = {
  checkpointUids: [],
  checkpointCgroups: [],
  checkpointPids: [],
  restoreNetns: [],
  handoverPrefixes: [],
  receiverUids: [],
};

/** What a hand-over under this policy may reach: the directories its socket may be in, the uids its receiver may run as. */
export function handoverRules(p: TargetPolicy): HandoverRules {
  return { prefixes: p.handoverPrefixes, receiverUids: p.receiverUids };
}

function processUid(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function processCgroup(pid: number): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'latin1')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

function underPrefix(path: string, prefix: string): boolean {
  const p = prefix.endsWith('/') && prefix.length > 1 ? prefix.slice(0, -1) : prefix;
  return p === '/' || path === p || path.startsWith(`${p}/`);
}

/** The identity of a namespace the operator's policy names (its paths are trusted: followed as they are). */
function netnsIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Throws FORBIDDEN unless the policy lets this process be checkpointed. */
export function checkCheckpointTarget(p: TargetPolicy, pid: number): void {
  if (p.checkpointPids.length && !p.checkpointPids.includes(pid)) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid}`);
  }
  if (p.checkpointUids.length) {
    const uid = processUid(pid);
    if (uid === undefined) throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`);
    if (!p.checkpointUids.includes(uid)) throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing processes of uid ${uid} (pid ${pid})`);
  }
  if (p.checkpointCgroups.length) {
    const cg = processCgroup(pid);
    if (cg === undefined) throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`);
    if (!p.checkpointCgroups.some((prefix) => underPrefix(cg, prefix))) {
      throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid} (cgroup ${cg})`);
    }
  }
}

/**
 * Throws FORBIDDEN unless the policy lets connections be restored into this namespace (undefined: the
 * daemon's own). `netns` is the namespace as opened once for the whole restore: its identity is what is
 * compared, and what the restore then uses.
 */
export function checkRestoreTarget(p: TargetPolicy, netns: NetnsHandle | undefined): void {
  if (!p.restoreNetns.length) return;
  const id = netns?.id ?? homeNetnsId();
  if (!p.restoreNetns.some((allowed) => netnsIdentity(allowed) === id)) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow restoring into ${netns ? netns.path : "the daemon's own network namespace"}`);
  }
}

export interface CallerLimits {
  /** calls one caller may have running at once */
  maxCalls: number;
  /** frozen or held sessions one caller may own at once */
  maxSessions: number;
}

/** Counts running calls per caller; RESOURCE_EXHAUSTED past the limit. */
export class CallerGate {
  private readonly running = new Map<string, number>();

  constructor(private readonly limits: CallerLimits) {}

  /** Takes a call slot for `caller`; the returned function gives it back (call it exactly once). */
  enter(caller: string): () => void {
    const n = this.running.get(caller) ?? 0;
    if (n >= this.limits.maxCalls) throw new SoccrError('LIMIT', `caller ${caller} already has ${n} calls running (limit ${this.limits.maxCalls})`);
    this.running.set(caller, n + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const m = (this.running.get(caller) ?? 1) - 1;
      if (m <= 0) this.running.delete(caller);
      else this.running.set(caller, m);
    };
  }

  /** Throws RESOURCE_EXHAUSTED when `active` sessions already reach the per-caller limit. */
  checkSessions(caller: string, active: number): void {
    if (active >= this.limits.maxSessions) {
      throw new SoccrError('LIMIT', `caller ${caller} already holds ${active} active sessions (limit ${this.limits.maxSessions})`);
    }
  }
}
