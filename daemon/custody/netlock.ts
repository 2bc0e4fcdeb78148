// The network lock: while a connection is frozen (or not yet rebuilt), no packet may reach or leave it,
// or the checkpoint misses bytes and a host without the socket answers with RST. The daemon owns one
// nftables table per network namespace it works in, with sets of connection 4-tuples and drop rules in
// both directions; packets carrying the engine's mark (re-injected FINs) pass. All the connections of
// one call go in or out in one transaction, so 1000 cost about as much as one. Transactions run through
// libnftables in-process (under a millisecond: spawning nft costs 5-10 ms on the freeze path), with one
// context per namespace; without the library, through the nft program.
//
// Each daemon instance has its own table (named after its instance id, instance.ts) and marks the
// tables it creates with a comment naming itself. It touches only tables that carry its mark: a table of
// that name without it (another program's, or another daemon's) is never flushed, filled or deleted.
import { spawnSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { SoccrError } from '../../protocol/errors';
import type { DaemonInstance } from './instance';
import type { Logger } from '../log';
import { SocketAddress, isMappedIPv4 } from '../../protocol/address';
import { NftContext, reserveLowFds } from '../kernel/native';
import { NetnsHandle, homeNetnsId, inNetnsFd } from '../kernel/netns';
import { networkLockTimed } from '../metrics';

/**
 * A connection's addresses; or, with remote port 0, a listening socket's: then only new connections'
 * SYNs to it are dropped (a peer retransmits a SYN that got no answer), so no connection completes into
 * its accept queue while that queue is being taken (Checkpoint's take_backlog).
 */
export interface LockTuple {
  local: SocketAddress;
  remote: SocketAddress;
}

type LockSet = 'conn4' | 'conn6' | 'listen4' | 'listen6' | 'listenport';
const LOCK_SETS: readonly LockSet[] = ['conn4', 'conn6', 'listen4', 'listen6', 'listenport'];

export interface NetworkLockOptions {
  /** nftables table name (family inet); lockTableOf(owner) unless the operator chose one */
  table: string;
  /** the daemon instance the tables belong to: the comment of every table it creates names it */
  owner: DaemonInstance;
  /** packets with this mark are let through */
  mark: number;
  log: Logger;
}

/** The lock table of an instance that was given none: two daemons, two tables. */
export function lockTableOf(owner: DaemonInstance): string {
  return `soccrd_${owner.id}`;
}

/** nft keeps at most 128 bytes of a comment; the instance id comes first so that it always fits. */
const COMMENT_MAX = 127;

/** The comment that marks a table as `owner`'s: its id, then its state directory for people. */
function ownerMark(owner: DaemonInstance): string {
  const dir = owner.stateDir.replace(/[^\w./@:+-]/g, '_');
  return `soccrd instance ${owner.id} state-dir ${dir}`.slice(0, COMMENT_MAX);
}

/** The instance id a table's comment names, if it is a soccrd mark. */
function markedInstance(comment: string): string | undefined {
  return /^soccrd instance ([0-9a-f]+)(?: |$)/.exec(comment)?.[1];
}

/** The comment of a table in `nft list table` output ('' without one). */
function tableComment(listing: string): string {
  return /^table inet \S+ \{\n\tcomment "([^"\n]*)"$/m.exec(listing)?.[1] ?? '';
}

/** One tuple as an nftables set element, and the set it belongs to. */
function element(t: LockTuple): { set: LockSet; text: string } {
  const v4 = (a: SocketAddress): string | undefined => (a.family === 'ipv4' ? a.ip : isMappedIPv4(a) ? a.ip.slice(a.ip.lastIndexOf(':') + 1) : undefined);
  if (t.remote.port === 0) {
    // A listener: bound to every address (one of IPv6 takes IPv4 too), by its port alone.
    if (t.local.ip === '0.0.0.0' || t.local.ip === '::') return { set: 'listenport', text: String(t.local.port) };
    const a4 = v4(t.local);
    return a4 !== undefined ? { set: 'listen4', text: `${a4} . ${t.local.port}` } : { set: 'listen6', text: `${t.local.ip} . ${t.local.port}` };
  }
  const l4 = v4(t.local);
  const r4 = v4(t.remote);
  if (l4 !== undefined && r4 !== undefined) return { set: 'conn4', text: `${l4} . ${t.local.port} . ${r4} . ${t.remote.port}` };
  return { set: 'conn6', text: `${t.local.ip} . ${t.local.port} . ${t.remote.ip} . ${t.remote.port}` };
}

/** A failed nft call, saying which step failed and where. */
function failure(ns: NamespaceRef | undefined, what: string, why: string): SoccrError {
  return new SoccrError('KERNEL', `network lock: ${what} failed${ns?.path ? ` in ${ns.path}` : ''}: ${why.split('\n')[0]}`);
}

/**
 * A namespace as the lock's callers name it: the handle their call opened once (a restore's target, a
 * checkpoint's owner's), or a path opened here once for the call (tests, tools); undefined: the daemon's own.
 */
export type NetnsArg = NetnsHandle | string | undefined;

/**
 * Calls `fn` with the namespace `ns` names, opened at most once (a path is opened safely and closed after);
 * undefined for the daemon's own.
 */
function withNamespace<T>(ns: NetnsArg, fn: (h: NetnsHandle | undefined) => T): T {
  if (typeof ns !== 'string') return fn(ns);
  const h = NetnsHandle.open(ns);
  try {
    return fn(h);
  } finally {
    h.close();
  }
}

/** A namespace's identity: its nsfs inode, so two paths to one namespace share their lock state. */
function netnsKey(h: NetnsHandle | undefined): string {
  return h?.id ?? homeNetnsId();
}

interface NamespaceLock {
  /** for messages */
  path: string | undefined;
  /** an open descriptor of the namespace: it stays reachable after the process that named it exits */
  fd: number;
  /** element text -> how many holders (two sessions may lock the same tuple) */
  held: Map<string, { set: string; count: number }>;
  /** libnftables context created inside the namespace (undefined: not yet, or the library is missing) */
  nft?: NftContext;
}

/** A namespace to run a transaction in: one the daemon holds locks in, or a transient one (recovery). */
interface NamespaceRef {
  path: string | undefined;
  fd: number;
  nft?: NftContext;
}

export class NetworkLock {
  /** nft transactions run so far (for tests and metrics: one per lock or unlock call) */
  transactions = 0;
  private readonly namespaces = new Map<string, NamespaceLock>();
  private readonly ownKey = homeNetnsId();
  private ownNft: NftContext | undefined;
  /** libnftables in-process, unless it is missing (then the nft program) */
  private readonly viaLibrary: boolean;

  constructor(private readonly o: NetworkLockOptions) {
    this.viaLibrary = NftContext.available();
    // Low fds for the contexts' sockets to come, taken while the daemon holds few (see native.ts).
    if (this.viaLibrary) reserveLowFds();
  }

  /** Runs `script` in the namespace (the daemon's own if undefined): what it printed, and '' or nft's error text. */
  private nft(ns: NamespaceRef | undefined, script: string): { output: string; error: string } {
    const own = !ns || ns.fd < 0;
    return this.viaLibrary ? this.runInProcess(ns, own, script) : this.runProgram(ns, own, script);
  }

  /** Runs one transaction; returns '' or nft's error text. */
  private attempt(ns: NamespaceRef | undefined, script: string): string {
    this.transactions++;
    return this.nft(ns, script).error;
  }

  private run(ns: NamespaceRef | undefined, script: string, what: string): void {
    const why = this.attempt(ns, script);
    if (why) throw failure(ns, what, why);
  }

  /** Through libnftables: the context is made, and used, inside the namespace. */
  private runInProcess(ns: NamespaceRef | undefined, own: boolean, script: string): { output: string; error: string } {
    const inside = <T>(fn: () => T): T => (own ? fn() : inNetnsFd((ns as NamespaceRef).fd, fn, ns?.path ?? 'of the lock'));
    // The daemon's own namespace and the namespaces it holds locks in keep their context; a namespace
    // met only by recovery gets one for this call.
    const keep = own || (ns !== undefined && 'held' in ns);
    let ctx = own ? this.ownNft : ns?.nft;
    if (!ctx) {
      const made = inside(() => NftContext.create());
      if (typeof made === 'string') return { output: '', error: made };
      ctx = made;
      if (own) this.ownNft = ctx;
      else if (keep) (ns as NamespaceRef).nft = ctx;
    }
    try {
      return inside(() => ctx.query(script));
    } finally {
      if (!keep) ctx.free();
    }
  }

  /** Through the nft program (where libnftables is missing). */
  private runProgram(ns: NamespaceRef | undefined, own: boolean, script: string): { output: string; error: string } {
    const r = own
      ? spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8', timeout: 10_000 })
      : spawnSync('nsenter', ['--net=/proc/self/fd/3', 'nft', '-f', '-'], {
          input: script,
          encoding: 'utf8',
          timeout: 10_000,
          stdio: ['pipe', 'pipe', 'pipe', (ns as NamespaceRef).fd],
        });
    if (r.error) return { output: '', error: r.error.message };
    return { output: r.stdout ?? '', error: r.status === 0 ? '' : (r.stderr || '').trim() || `nft exited with ${String(r.status)}` };
  }

  /**
   * Whether the namespace holds a table `table` of this instance: 'absent' or 'ours'. One of that name
   * without this instance's mark is refused (LOCK_TABLE_TAKEN), and left as it is.
   */
  private ownership(ns: NamespaceRef | undefined, table = this.o.table): 'absent' | 'ours' {
    const r = this.nft(ns, `list table inet ${table}\n`);
    if (r.error) {
      if (r.error.includes('No such file or directory')) return 'absent';
      throw failure(ns, `reading the table ${table}`, r.error);
    }
    const comment = tableComment(r.output);
    const id = markedInstance(comment);
    if (id === this.o.owner.id) return 'ours';
    const whose = id
      ? `another soccrd's (its comment: "${comment}"): give each daemon its own --state-dir and no --lock-table, or distinct ones`
      : `not soccrd's (${comment ? `its comment "${comment}" is` : 'it has'} no soccrd mark): choose another --lock-table, or delete that table if it is a leftover`;
    throw new SoccrError(
      'LOCK_TABLE_TAKEN',
      `network lock: the nftables table inet ${table}${ns?.path ? ` in ${ns.path}` : ''} is ${whose}; soccrd leaves it untouched`,
    );
  }

  /**
   * Makes the table this instance's in the namespace, with its sets, chains and rules current, and runs
   * `then` in the same transaction. Created here, it gets the instance's mark (`create` fails when a table
   * of that name exists); found there, it must carry the mark already.
   */
  private claim(ns: NamespaceRef | undefined, then: string, what: string): void {
    const created = this.attempt(ns, `create table inet ${this.o.table} { comment "${ownerMark(this.o.owner)}"; }\n${this.tableScript()}${then}`);
    if (!created) return;
    if (this.ownership(ns) === 'absent') throw failure(ns, what, created);
    this.run(ns, `${this.tableScript()}${then}`, what);
  }

  /** Frees a namespace's context and closes its descriptor, when the daemon lets it go. */
  private forget(ns: NamespaceLock): void {
    ns.nft?.free();
    ns.nft = undefined;
    if (ns.fd >= 0) closeSync(ns.fd);
  }

  private tableScript(): string {
    const t = `inet ${this.o.table}`;
    const mark = `0x${this.o.mark.toString(16)}`;
    // `add` is idempotent for sets and chains; rules are rewritten, set elements kept.
    return [
      `add set ${t} conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }`,
      `add set ${t} conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }`,
      `add set ${t} listen4 { type ipv4_addr . inet_service; }`,
      `add set ${t} listen6 { type ipv6_addr . inet_service; }`,
      `add set ${t} listenport { type inet_service; }`,
      `add chain ${t} input { type filter hook input priority -300; policy accept; }`,
      `add chain ${t} output { type filter hook output priority -300; policy accept; }`,
      `flush chain ${t} input`,
      `flush chain ${t} output`,
      `add rule ${t} input meta mark ${mark} accept`,
      `add rule ${t} input ip daddr . tcp dport . ip saddr . tcp sport @conn4 drop`,
      `add rule ${t} input ip6 daddr . tcp dport . ip6 saddr . tcp sport @conn6 drop`,
      // A new connection's SYN to a listener whose accept queue is being taken (an ACK that completes
      // an earlier handshake passes: its connection joins the queue before the queue is read, or stays).
      `add rule ${t} input tcp flags & (syn | ack) == syn ip daddr . tcp dport @listen4 drop`,
      `add rule ${t} input tcp flags & (syn | ack) == syn ip6 daddr . tcp dport @listen6 drop`,
      `add rule ${t} input tcp flags & (syn | ack) == syn tcp dport @listenport drop`,
      `add rule ${t} output meta mark ${mark} accept`,
      `add rule ${t} output ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop`,
      `add rule ${t} output ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop`,
      '',
    ].join('\n');
  }

  /** The namespace's lock state; met for the first time, its table is created, with `then` in the same transaction. */
  private namespace(h: NetnsHandle | undefined, then = ''): { key: string; ns: NamespaceLock; ran: boolean } {
    const key = netnsKey(h);
    let ns = this.namespaces.get(key);
    if (!ns) {
      // Its own descriptor (a duplicate of the caller's): the lock outlives the call that named it.
      const fd = key === this.ownKey || !h ? -1 : h.dupFd();
      ns = { path: h?.path, fd, held: new Map() };
      try {
        this.claim(ns, then, then ? 'creating the lock table and locking' : 'creating the lock table');
      } catch (err) {
        this.forget(ns);
        throw err;
      }
      this.namespaces.set(key, ns);
      return { key, ns, ran: true };
    }
    return { key, ns, ran: false };
  }

  /** The table's name (family inet). */
  get table(): string {
    return this.o.table;
  }

  /** Flushes both sets and puts `keep` back, as one script (to run as one transaction: no gap in between). */
  private resetScript(keep: readonly LockTuple[]): { script: string; held: Map<string, { set: string; count: number }> } {
    const held = new Map<string, { set: string; count: number }>();
    for (const t of keep) {
      const e = element(t);
      const h = held.get(e.text);
      if (h) h.count++;
      else held.set(e.text, { set: e.set, count: 1 });
    }
    const lines = LOCK_SETS.map((set) => `flush set inet ${this.o.table} ${set}`);
    for (const set of LOCK_SETS) {
      const els = [...held].filter(([, h]) => h.set === set).map(([text]) => text);
      if (els.length) lines.push(`add element inet ${this.o.table} ${set} { ${els.join(', ')} }`);
    }
    return { script: `${lines.join('\n')}\n`, held };
  }

  /**
   * Prepares the daemon's own namespace: the table exists, its rules are current, and entries left by an
   * earlier run are gone (a daemon that starts holds no session yet), except `keep`: the connections of
   * sessions recovered from the crash journal, which stay locked without a gap. Returns whether locking
   * works; throws when a table of its name is not this instance's (LOCK_TABLE_TAKEN): the daemon must not
   * start then.
   */
  start(keep: readonly LockTuple[] = []): boolean {
    try {
      const { script, held } = this.resetScript(keep);
      this.claim(undefined, script, 'reconciling the lock table');
      this.namespaces.set(this.ownKey, { path: undefined, fd: -1, held });
      return true;
    } catch (err) {
      if (err instanceof SoccrError && err.kind === 'LOCK_TABLE_TAKEN') throw err;
      this.o.log.warn('network lock unavailable', { error: err });
      return false;
    }
  }

  /** The key lock() and unlock() use for the namespace `ns` (the daemon's own if undefined). */
  keyOf(ns: NetnsArg): string {
    return withNamespace(ns, netnsKey);
  }

  /**
   * Recovery, in another namespace: what an earlier run left in its table there goes, except `keep`
   * (which stays locked without a gap, held from now on by this run). With nothing to keep, the table
   * goes. Only a table of this instance is touched (LOCK_TABLE_TAKEN otherwise). Returns the namespace's key.
   */
  reconcile(target: NetnsHandle | string, keep: readonly LockTuple[]): string {
    return withNamespace(target, (h) => {
      const key = netnsKey(h);
      if (!h || key === this.ownKey) throw new SoccrError('BAD_REQUEST', "reconcile: the daemon's own namespace is reconciled by start()");
      const path = h.path;
      if (keep.length === 0) {
        const ns = this.namespaces.get(key);
        if (ns && ns.held.size > 0) return key; // this run holds entries there already: leave them
        const fd = ns?.fd ?? h.dupFd();
        try {
          if (this.ownership({ path, fd }) === 'ours') this.run({ path, fd }, `delete table inet ${this.o.table}\n`, 'removing a stale lock table');
        } finally {
          if (!ns) closeSync(fd);
        }
        if (ns) {
          this.forget(ns);
          this.namespaces.delete(key);
        }
        return key;
      }
      const { script, held } = this.resetScript(keep);
      const { ns, ran } = this.namespace(h, script);
      if (!ran) this.run(ns, script, 'reconciling the lock table');
      ns.held = held;
      return key;
    });
  }

  /**
   * Recovery: removes a table of another name (an earlier run's --lock-table) from the namespace at
   * `path`, if it carries this instance's mark (LOCK_TABLE_TAKEN otherwise).
   */
  dropTable(target: NetnsArg, table: string): void {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(table) || table === this.o.table) return;
    withNamespace(target, (h) => {
      const own = netnsKey(h) === this.ownKey;
      const fd = own || !h ? -1 : h.dupFd();
      const path = h?.path;
      try {
        if (this.ownership({ path, fd }, table) === 'ours') this.run({ path, fd }, `delete table inet ${table}\n`, `removing the lock table ${table}`);
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    });
  }

  /**
   * Drops every packet of these connections in the namespace `target` (the daemon's own if undefined), in
   * one transaction. Returns the namespace's key, which unlock takes (the path may be gone by then).
   */
  lock(target: NetnsArg, tuples: readonly LockTuple[]): string {
    return withNamespace(target, (h) => this.lockIn(h, tuples));
  }

  private lockIn(h: NetnsHandle | undefined, tuples: readonly LockTuple[]): string {
    const startedAt = performance.now();
    // Linear in the tuples (a session may lock tens of thousands of connections).
    const held = this.namespaces.get(netnsKey(h))?.held;
    const add = new Map<string, string[]>();
    const seen = new Set<string>();
    for (const t of tuples) {
      const e = element(t);
      if (held?.has(e.text) || seen.has(e.text)) continue;
      seen.add(e.text);
      const els = add.get(e.set);
      if (els) els.push(e.text);
      else add.set(e.set, [e.text]);
    }
    const script = [...add].map(([set, els]) => `add element inet ${this.o.table} ${set} { ${els.join(', ')} }\n`).join('');
    // A namespace met for the first time gets its table in the same transaction.
    const { key, ns, ran } = this.namespace(h, script);
    if (!ran && script) this.run(ns, script, 'locking');
    for (const t of tuples) {
      const e = element(t);
      const h = ns.held.get(e.text);
      if (h) h.count++;
      else ns.held.set(e.text, { set: e.set, count: 1 });
    }
    networkLockTimed('lock', startedAt);
    this.o.log.info('network locked', { netns: ns.path ?? 'own', connections: tuples.length, transactions: this.transactions });
    return key;
  }

  /** Lets these connections' packets through again, in one transaction. Never throws: logs instead. */
  unlock(key: string, tuples: readonly LockTuple[]): void {
    const startedAt = performance.now();
    const ns = this.namespaces.get(key);
    if (!ns || tuples.length === 0) return;
    const del = new Map<string, string[]>();
    for (const t of tuples) {
      const e = element(t);
      const h = ns.held.get(e.text);
      if (!h) continue;
      if (--h.count > 0) continue;
      ns.held.delete(e.text);
      const els = del.get(h.set);
      if (els) els.push(e.text);
      else del.set(h.set, [e.text]);
    }
    if (!del.size) return;
    // Another namespace where nothing is held any more is let go: its table goes in the same
    // transaction, and its descriptor is closed (held open, it would keep every namespace the daemon
    // ever worked in alive, and cost an fd each).
    const release = ns.fd >= 0 && ns.held.size === 0;
    let script = [...del].map(([set, els]) => `delete element inet ${this.o.table} ${set} { ${els.join(', ')} }\n`).join('');
    if (release) script += `delete table inet ${this.o.table}\n`;
    try {
      this.run(ns, script, 'unlocking');
      networkLockTimed('unlock', startedAt);
      this.o.log.info('network unlocked', { netns: ns.path ?? 'own', connections: tuples.length, transactions: this.transactions });
    } catch (err) {
      this.o.log.error('network unlock failed', { netns: ns.path ?? 'own', error: err });
    } finally {
      if (release) {
        this.forget(ns);
        this.namespaces.delete(key);
      }
    }
  }

  /** Elements currently held, by namespace path (for tests and shutdown). */
  heldCount(): number {
    let n = 0;
    for (const ns of this.namespaces.values()) n += ns.held.size;
    return n;
  }

  /** At exit: the table goes from every namespace the daemon worked in. */
  stop(): void {
    for (const ns of this.namespaces.values()) {
      try {
        this.run(ns, `delete table inet ${this.o.table}\n`, 'removing the lock table');
      } catch (err) {
        this.o.log.warn('removing the lock table failed', { netns: ns.path ?? 'own', error: err });
      }
      this.forget(ns);
    }
    this.namespaces.clear();
    this.ownNft?.free();
    this.ownNft = undefined;
  }
}
