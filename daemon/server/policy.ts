// What may be touched, and by whom. Two layers:
// - the daemon-wide bound (--checkpoint-uid, --checkpoint-cgroup, --checkpoint-pid, --restore-netns,
//   --handover-prefix, --receiver-uid): which processes may be checkpointed, which namespaces restored
//   into, where hand-over sockets may be and who may receive, for every caller, root included; empty
//   lists: any;
// - per identity (the --policy file; see policy-file.ts): what one caller may do within that bound.
//   Admins (root over a Unix socket, --admin-uid, --admin-identity, --insecure) are not narrowed; any
//   other caller gets its identity's rules, field by field over the file's `default`, over the built-in
//   default below (restrictive).
// And how much one caller may hold at once: concurrent calls and active sessions, per identity.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { type HandoverRules, precheckHandoverPath } from '../custody/handover-target';
import { type NetnsHandle, homeNetnsId } from '../kernel/netns';
import { SoccrError } from '../../protocol/errors';
import type { SavedConnection } from '../../protocol/saved-state';
import type { Caller } from './auth';

export interface TargetPolicy {
  /** uids whose processes may be checkpointed; empty: any */
  checkpointUids: number[];
  /** cgroup v2 path prefixes (as in /proc/PID/cgroup, e.g. /system.slice/app.service); empty: any */
  checkpointCgroups: string[];
  /** pids that may be checkpointed; empty: any */
  checkpointPids: number[];
  /** namespaces (paths, compared by namespace identity) that may be restored into; empty: any */
  restoreNetns: string[];
  /** directories under which hand-over sockets may be (compared with the socket's real path); empty: any */
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

/** A list of allowed values, or '*': any. */
export type AllowList<T> = '*' | readonly T[];

/** What one identity may do (the policy file's form; see README, Security model). */
export interface CallerRules {
  /** uids whose processes it may checkpoint and list the sockets of (real and effective uid); 'self': the caller's own uid (Unix callers) */
  checkpointUids: AllowList<number | 'self'>;
  /** cgroup v2 path prefixes those processes must be under */
  checkpointCgroups: AllowList<string>;
  /** namespaces it may restore into: paths (compared by namespace identity), 'daemon' for the daemon's own */
  restoreNetns: AllowList<string>;
  /** directories under which the hand-over paths it names must lie */
  handoverPrefixes: AllowList<string>;
  /** uids a hand-over receiver may run as (checked against the receiver's SO_PEERCRED); 'self': the caller's own uid */
  receiverUids: AllowList<number | 'self'>;
  /** may it restore with IP_TRANSPARENT */
  transparent: boolean;
  /** SO_MARK values a restored socket may carry (0, no mark, always may) */
  marks: AllowList<number>;
  /** the largest send or receive buffer size (as getsockopt reports it) a saved state may have forced on a restored socket */
  maxBufferBytes: '*' | number;
}

export const RULE_KEYS: ReadonlyArray<keyof CallerRules> = [
  'checkpointUids',
  'checkpointCgroups',
  'restoreNetns',
  'handoverPrefixes',
  'receiverUids',
  'transparent',
  'marks',
  'maxBufferBytes',
];

/** Admins: everything (within the daemon-wide bound). */
export const ADMIN_RULES: CallerRules = {
  checkpointUids: '*',
  checkpointCgroups: '*',
  restoreNetns: '*',
  handoverPrefixes: '*',
  receiverUids: '*',
  transparent: true,
  marks: '*',
  maxBufferBytes: '*',
};

/**
 * The built-in default of a non-admin Unix caller: its own processes, the daemon's own namespace, no
 * hand-over path (name the directories in the policy file), receivers of its own uid, no transparent
 * restore, no mark, buffers no larger than an unprivileged socket can have here (`maxBufferBytes`
 * filled in at start: unprivilegedBufferLimit()).
 */
export function unixDefaultRules(maxBufferBytes: number): CallerRules {
  return {
    checkpointUids: ['self'],
    checkpointCgroups: '*',
    restoreNetns: ['daemon'],
    handoverPrefixes: [],
    receiverUids: ['self'],
    transparent: false,
    marks: [],
    maxBufferBytes,
  };
}

/** The built-in default of a non-admin TLS caller: nothing to checkpoint, nowhere to restore into, unless the policy file says so. */
export function tlsDefaultRules(maxBufferBytes: number): CallerRules {
  return { ...unixDefaultRules(maxBufferBytes), checkpointUids: [], restoreNetns: [], receiverUids: [] };
}

/**
 * The largest buffer an unprivileged socket can have in the daemon's namespace: SO_SNDBUF/SO_RCVBUF up
 * to net.core.wmem_max/rmem_max (doubled by the kernel), or autotuning up to tcp_wmem/tcp_rmem's maximum.
 */
export function unprivilegedBufferLimit(): number {
  const read = (p: string): number[] => {
    try {
      return readFileSync(p, 'latin1').trim().split(/\s+/).map(Number);
    } catch {
      return [];
    }
  };
  const sizes = [
    ...read('/proc/sys/net/core/wmem_max').map((n) => 2 * n),
    ...read('/proc/sys/net/core/rmem_max').map((n) => 2 * n),
    read('/proc/sys/net/ipv4/tcp_wmem')[2],
    read('/proc/sys/net/ipv4/tcp_rmem')[2],
  ].filter((n) => Number.isFinite(n) && n > 0);
  return sizes.length ? Math.max(...sizes) : 6 * 1024 * 1024;
}

/** The uids of a process: real, effective, saved set and filesystem (every one must be allowed), from procfs. */
function processUids(pid: number): ProcessFacts['uids'] | undefined {
  try {
    const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? { real: Number(m[1]), effective: Number(m[2]), saved: Number(m[3]), fs: Number(m[4]) } : undefined;
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

/** A namespace's identity (device and inode of its nsfs file). */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

/**
 * The identity of a namespace the operator's policy names (its paths are trusted, and followed). The
 * caller's namespace is never looked up by path here: its identity comes from the descriptor the call
 * opened once (NetnsHandle).
 */
function netnsIdentity(path: string): NetnsIdentity | undefined {
  try {
    // stat follows links, /proc's magic ones included (realpath cannot resolve /proc/self/ns/net).
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

const sameNetns = (a: NetnsIdentity | undefined, b: NetnsIdentity | undefined): boolean => a?.dev === b?.dev && a?.ino === b?.ino && a !== undefined;

/**
 * What a checkpoint policy looks at in a process: its uids, its cgroup v2 path. The checkpoint reads them
 * through its pidfd (repair/acquire.ts ProcessHandle.facts, confirmed against the pidfd).
 */
export interface ProcessFacts {
  /** real and effective uid; saved set and filesystem uid where known (a process can take its saved uid back) */
  uids: { real: number; effective: number; saved?: number; fs?: number };
  cgroup: string | undefined;
}

/** Every uid a process holds, each with what it is ('real', 'effective', ...): each one must be allowed. */
function heldUids(f: ProcessFacts): Array<[string, number]> {
  const { real, effective, saved, fs } = f.uids;
  const all: Array<[string, number | undefined]> = [
    ['real', real],
    ['effective', effective],
    ['saved', saved],
    ['filesystem', fs],
  ];
  return all.filter((e): e is [string, number] => e[1] !== undefined);
}

/** The uids of `f` outside `allowed`, as "effective uid 0, saved uid 0"; '' if none. */
function uidsOutside(f: ProcessFacts, allowed: readonly number[]): { uid: number; which: string } | undefined {
  const out = heldUids(f).filter(([, uid]) => !allowed.includes(uid));
  return out.length ? { uid: out[0][1], which: out.map(([what, uid]) => `${what} uid ${uid}`).join(', ') } : undefined;
}

/** The facts of `pid` from procfs; NO_SUCH_PROCESS when it is gone. */
export function processFacts(pid: number): ProcessFacts {
  const uids = processUids(pid);
  if (!uids) throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`);
  return { uids, cgroup: processCgroup(pid) };
}

/** Throws FORBIDDEN unless the daemon-wide bound lets this process be checkpointed. */
export function checkCheckpointTarget(p: TargetPolicy, pid: number, facts?: ProcessFacts): void {
  if (p.checkpointPids.length && !p.checkpointPids.includes(pid)) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid}`);
  }
  if (p.checkpointUids.length) {
    const out = uidsOutside(facts ?? processFacts(pid), p.checkpointUids);
    if (out) throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing processes of uid ${out.uid} (pid ${pid}: ${out.which} not allowed)`);
  }
  if (p.checkpointCgroups.length) {
    const cg = (facts ?? processFacts(pid)).cgroup;
    if (cg === undefined) throw new SoccrError('NO_SUCH_PROCESS', `no process with pid ${pid}`);
    if (!p.checkpointCgroups.some((prefix) => underPrefix(cg, prefix))) {
      throw new SoccrError('FORBIDDEN', `the policy does not allow checkpointing pid ${pid} (cgroup ${cg})`);
    }
  }
}

/** The identity of a namespace as opened (undefined: the daemon's own). */
function identityOf(ns: NetnsHandle | undefined): NetnsIdentity {
  if (ns) return { dev: ns.dev, ino: ns.ino };
  const [dev, ino] = homeNetnsId().split(':').map(Number);
  return { dev, ino };
}

/** How a restore target is named in messages. */
const targetName = (ns: NetnsHandle | undefined): string => (ns ? ns.path : "the daemon's own network namespace");

/**
 * Throws FORBIDDEN unless the daemon-wide bound lets connections be restored into the namespace `ns`
 * (undefined: the daemon's own), as the restore opened it once: its identity is compared, and the
 * restore then uses that very descriptor.
 */
export function checkRestoreTarget(p: TargetPolicy, ns: NetnsHandle | undefined): void {
  if (!p.restoreNetns.length) return;
  const id = identityOf(ns);
  if (!p.restoreNetns.some((allowed) => sameNetns(netnsIdentity(allowed), id))) {
    throw new SoccrError('FORBIDDEN', `the policy does not allow restoring into ${targetName(ns)}`);
  }
}

/** Both allow-lists (undefined: any): what both allow. */
function bothAllow(a: readonly number[] | undefined, b: readonly number[] | undefined): readonly number[] | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.filter((x) => b.includes(x));
}

/** An allow-list with 'self' resolved to the caller's uid (none for a caller without one); undefined: any. */
function resolveUids(list: AllowList<number | 'self'>, caller: Caller): readonly number[] | undefined {
  if (list === '*') return undefined;
  return [...new Set(list.flatMap((u) => (u === 'self' ? (caller.uid !== undefined ? [caller.uid] : []) : [u])))];
}

const anyOr = <T>(list: AllowList<T>): readonly T[] | undefined => (list === '*' ? undefined : list);

/**
 * One caller's policy, resolved: what the checks of every call that touches something consult. A list
 * that is undefined allows anything; the daemon-wide bound applies as well.
 */
export class CallerPolicy {
  readonly checkpointUids: readonly number[] | undefined;
  readonly checkpointCgroups: readonly string[] | undefined;
  readonly restoreNetns: readonly string[] | undefined;
  /** directories the hand-over paths this caller names must lie under; undefined: any */
  readonly handoverPrefixes: readonly string[] | undefined;
  /** uids a receiver of this caller's hand-overs may run as (SO_PEERCRED); undefined: any */
  readonly receiverUids: readonly number[] | undefined;
  readonly transparent: boolean;
  readonly marks: readonly number[] | undefined;
  readonly maxBufferBytes: number | undefined;

  constructor(
    readonly caller: Caller,
    rules: CallerRules,
    readonly bound: TargetPolicy = OPEN_POLICY,
  ) {
    this.checkpointUids = resolveUids(rules.checkpointUids, caller);
    this.checkpointCgroups = anyOr(rules.checkpointCgroups);
    this.restoreNetns = anyOr(rules.restoreNetns);
    this.handoverPrefixes = anyOr(rules.handoverPrefixes);
    this.receiverUids = resolveUids(rules.receiverUids, caller);
    this.transparent = rules.transparent;
    this.marks = anyOr(rules.marks);
    this.maxBufferBytes = rules.maxBufferBytes === '*' ? undefined : rules.maxBufferBytes;
  }

  /**
   * FORBIDDEN unless this caller may checkpoint `pid` (and list its sockets): the daemon-wide bound, then
   * its own rules on every uid the process holds (real, effective, saved, filesystem) and its cgroup. `facts`: what the caller of
   * this check read of the process (e.g. through a pidfd); read from procfs otherwise.
   */
  checkCheckpoint(pid: number, facts?: ProcessFacts): void {
    const f = facts ?? processFacts(pid);
    checkCheckpointTarget(this.bound, pid, f);
    if (this.checkpointUids) {
      const out = uidsOutside(f, this.checkpointUids);
      if (out) throw new SoccrError('FORBIDDEN', `pid ${pid}: your policy does not let you touch processes of uid ${out.uid} (${out.which} not allowed)`);
    }
    if (this.checkpointCgroups) {
      const cg = f.cgroup;
      if (cg === undefined || !this.checkpointCgroups.some((prefix) => underPrefix(cg, prefix)))
        throw new SoccrError('FORBIDDEN', `pid ${pid}: your policy does not let you touch processes of cgroup ${cg ?? '(none)'}`);
    }
  }

  /**
   * FORBIDDEN unless this caller may restore into the namespace `ns` (undefined: the daemon's own), as
   * the restore opened it once (NetnsHandle): compared by its identity.
   */
  checkRestoreNetns(ns: NetnsHandle | undefined): void {
    checkRestoreTarget(this.bound, ns);
    if (!this.restoreNetns) return;
    const id = identityOf(ns);
    if (!this.restoreNetns.some((allowed) => sameNetns(allowed === 'daemon' ? identityOf(undefined) : netnsIdentity(allowed), id)))
      throw new SoccrError('FORBIDDEN', `your policy does not let you restore into ${targetName(ns)}`);
  }

  /** Whether a hand-over path is one this caller may name: absolute, normal (no '.', '..', '//') and under one of its prefixes. */
  mayHandOverTo(path: string): boolean {
    if (!isAbsolute(path) || posix.normalize(path) !== path || path.endsWith('/')) return false;
    // Strictly under a prefix: a path in that directory, never the directory itself.
    return !this.handoverPrefixes || this.handoverPrefixes.some((prefix) => underPrefix(path, prefix) && path !== prefix.replace(/(.)\/$/, '$1'));
  }

  /**
   * FORBIDDEN unless this caller may name `path` for a hand-over: by its name (this caller's prefixes),
   * and by what can be told now of where it leads (the daemon-wide prefixes, the real path of its
   * directory, never /proc). The hand-over itself checks again on the file it opens (handoverRules).
   */
  checkHandoverPath(path: string): void {
    if (!this.mayHandOverTo(path))
      throw new SoccrError(
        'FORBIDDEN',
        `hand-over path ${path}: ${this.handoverPrefixes?.length ? `your policy allows paths under ${this.handoverPrefixes.join(', ')} only` : 'your policy names no hand-over directory'} (absolute, without . or ..)`,
      );
    precheckHandoverPath(path, this.handoverRules());
  }

  /**
   * What a hand-over for this caller may reach, for the hand-over to check on the socket file it opens
   * and on the receiver it connects to: the daemon-wide bound and this caller's rules, both.
   */
  handoverRules(): HandoverRules {
    const prefixes: Array<readonly string[]> = [];
    if (this.bound.handoverPrefixes.length) prefixes.push(this.bound.handoverPrefixes);
    if (this.handoverPrefixes) prefixes.push(this.handoverPrefixes);
    return { prefixes, receiverUids: bothAllow(this.bound.receiverUids.length ? this.bound.receiverUids : undefined, this.receiverUids) };
  }

  /** Whether a receiver running as `uid` may take this caller's sockets. */
  mayReceive(uid: number): boolean {
    return !this.receiverUids || this.receiverUids.includes(uid);
  }

  /** FORBIDDEN unless a receiver running as `uid` may take this caller's sockets. */
  checkReceiver(uid: number): void {
    if (!this.mayReceive(uid))
      throw new SoccrError('FORBIDDEN', `the hand-over receiver runs as uid ${uid}, which your policy does not let receive your sockets`);
  }

  /** FORBIDDEN unless this caller may restore with these options. */
  checkRestoreOptions(o: { transparent?: boolean }): void {
    if (o.transparent && !this.transparent) throw new SoccrError('FORBIDDEN', 'your policy does not allow transparent restores (IP_TRANSPARENT)');
  }

  /** FORBIDDEN unless a socket rebuilt from `s` may carry its mark and its buffer sizes: checked before the socket exists. */
  checkSavedState(s: Pick<SavedConnection, 'options'>): void {
    const { mark, sndBuf, rcvBuf } = s.options;
    if (mark !== 0 && this.marks && !this.marks.includes(mark)) throw new SoccrError('FORBIDDEN', `your policy does not allow SO_MARK ${mark}`);
    const max = this.maxBufferBytes;
    if (max !== undefined && (sndBuf > max || rcvBuf > max))
      throw new SoccrError('FORBIDDEN', `your policy allows buffers of at most ${max} bytes, the saved state has ${Math.max(sndBuf, rcvBuf)}`);
  }
}

/** Every identity's rules, and the daemon-wide bound: what policyFor(caller) resolves from. */
export class PolicyBook {
  private readonly unix: CallerRules;
  private readonly tls: CallerRules;

  constructor(
    readonly bound: TargetPolicy = OPEN_POLICY,
    /** the policy file's `default` and `callers` (by identity: uid:N, cert:NAME) */
    private readonly file: { default?: Partial<CallerRules>; callers?: Readonly<Record<string, Partial<CallerRules>>> } = {},
    maxBufferBytes = unprivilegedBufferLimit(),
  ) {
    this.unix = { ...unixDefaultRules(maxBufferBytes), ...file.default };
    this.tls = { ...tlsDefaultRules(maxBufferBytes), ...file.default };
  }

  /** The policy of `caller`: admins everything within the bound; anyone else its identity's rules over the defaults. */
  policyFor(caller: Caller): CallerPolicy {
    if (caller.admin) return new CallerPolicy(caller, ADMIN_RULES, this.bound);
    const base = caller.uid !== undefined ? this.unix : this.tls;
    return new CallerPolicy(caller, { ...base, ...this.file.callers?.[caller.id] }, this.bound);
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
