// What may be touched: which processes may be checkpointed (by uid, cgroup path prefix or pid) and which
// network namespaces may be restored into. By default everything, for callers that may call at all.
// And how much one caller may hold at once: concurrent calls and active sessions.
import { realpathSync, statSync } from 'node:fs';
import type { ProcessFacts } from '../repair/acquire';
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
}

export const OPEN_POLICY: TargetPolicy = { checkpointUids: [], checkpointCgroups: [], checkpointPids: [], restoreNetns: [] };

function underPrefix(path: string, prefix: string): boolean {
  const p = prefix.endsWith('/') && prefix.length > 1 ? prefix.slice(0, -1) : prefix;
  return p === '/' || path === p || path.startsWith(`${p}/`);
}

function netnsIdentity(path: string): string | undefined {
  try {
    const st = statSync(realpathSync(path));
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * Throws FORBIDDEN unless the policy lets this process be checkpointed. `facts`: read after the pidfd was
 * open and confirmed against it (ProcessHandle.facts), so they are the process's that will be touched.
 * Every uid the process holds must be allowed: real, effective, saved set and filesystem (a setuid
 * program run by an allowed user is not that user's).
 */
export function checkCheckpointTarget(p: TargetPolicy, facts: ProcessFacts): void {
  const pid = facts.pid;
  if (p.checkpointPids.length && !p.checkpointPids.includes(pid)) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid}`);
  }
  if (p.checkpointUids.length) {
    const { real, effective, saved, fs } = facts.uids;
    const held: Array<[string, number]> = [
      ['real', real],
      ['effective', effective],
      ['saved', saved],
      ['filesystem', fs],
    ];
    const refused = held.filter(([, uid]) => !p.checkpointUids.includes(uid));
    if (refused.length) {
      throw new SoccrError(
        'FORBIDDEN',
        `the policy does not allow checkpointing processes of uid ${refused[0][1]} (pid ${pid}: ${refused.map(([what, uid]) => `${what} uid ${uid}`).join(', ')} not allowed)`,
      );
    }
  }
  if (p.checkpointCgroups.length) {
    const cg = facts.cgroup;
    if (cg === undefined || !p.checkpointCgroups.some((prefix) => underPrefix(cg, prefix))) {
      throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid} (cgroup ${cg ?? 'unknown: no cgroup v2'})`);
    }
  }
}

/** Throws FORBIDDEN unless the policy lets connections be restored into this namespace ('' = the daemon's). */
export function checkRestoreTarget(p: TargetPolicy, netns: string): void {
  if (!p.restoreNetns.length) return;
  const id = netnsIdentity(netns || '/proc/self/ns/net');
  if (!id || !p.restoreNetns.some((allowed) => netnsIdentity(allowed) === id)) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow restoring into ${netns || "the daemon's own network namespace"}`);
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
