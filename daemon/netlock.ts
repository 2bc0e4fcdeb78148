// The network lock: while a connection is frozen (or not yet rebuilt), no packet may reach or leave it,
// or the checkpoint misses bytes and a host without the socket answers with RST. The daemon owns one
// nftables table per network namespace it works in, with sets of connection 4-tuples and drop rules in
// both directions; packets carrying the engine's mark (re-injected FINs) pass. All the connections of
// one call go in or out in one `nft -f` transaction, so 1000 cost about as much as one.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { SoccrError } from './errors';
import type { Logger } from './log';
import { SocketAddress, isMappedIPv4 } from './sockaddr';

export interface LockTuple {
  local: SocketAddress;
  remote: SocketAddress;
}

export interface NetworkLockOptions {
  /** nftables table name (family inet) */
  table: string;
  /** packets with this mark are let through */
  mark: number;
  log: Logger;
}

/** One tuple as an nftables set element, and the set it belongs to. */
function element(t: LockTuple): { set: 'conn4' | 'conn6'; text: string } {
  const v4 = (a: SocketAddress): string | undefined => (a.family === 'ipv4' ? a.ip : isMappedIPv4(a) ? a.ip.slice(a.ip.lastIndexOf(':') + 1) : undefined);
  const l4 = v4(t.local);
  const r4 = v4(t.remote);
  if (l4 !== undefined && r4 !== undefined) return { set: 'conn4', text: `${l4} . ${t.local.port} . ${r4} . ${t.remote.port}` };
  return { set: 'conn6', text: `${t.local.ip} . ${t.local.port} . ${t.remote.ip} . ${t.remote.port}` };
}

/** A namespace's identity: its nsfs inode, so two paths to one namespace share their lock state. */
function netnsKey(path: string | undefined): string {
  try {
    const st = statSync(path ?? '/proc/self/ns/net');
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    throw new SoccrError('BAD_REQUEST', `network namespace ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

interface NamespaceLock {
  /** for messages */
  path: string | undefined;
  /** an open descriptor of the namespace: it stays reachable after the process that named it exits */
  fd: number;
  /** element text -> how many holders (two sessions may lock the same tuple) */
  held: Map<string, { set: string; count: number }>;
}

export class NetworkLock {
  /** nft transactions run so far (for tests and metrics: one per lock or unlock call) */
  transactions = 0;
  private readonly namespaces = new Map<string, NamespaceLock>();
  private readonly ownKey = netnsKey(undefined);

  constructor(private readonly o: NetworkLockOptions) {}

  private run(ns: { path: string | undefined; fd: number } | undefined, script: string, what: string): void {
    const own = !ns || ns.fd < 0;
    this.transactions++;
    const r = own
      ? spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8', timeout: 10_000 })
      : spawnSync('nsenter', ['--net=/proc/self/fd/3', 'nft', '-f', '-'], { input: script, encoding: 'utf8', timeout: 10_000, stdio: ['pipe', 'pipe', 'pipe', ns.fd] });
    if (r.error || r.status !== 0) {
      const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n')[0];
      throw new SoccrError('KERNEL', `network lock: ${what} failed${ns?.path ? ` in ${ns.path}` : ''}: ${why}`);
    }
  }

  private tableScript(): string {
    const t = `inet ${this.o.table}`;
    const mark = `0x${this.o.mark.toString(16)}`;
    // `add` is idempotent for tables, sets and chains; rules are rewritten, set elements kept.
    return [
      `add table ${t}`,
      `add set ${t} conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }`,
      `add set ${t} conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }`,
      `add chain ${t} input { type filter hook input priority -300; policy accept; }`,
      `add chain ${t} output { type filter hook output priority -300; policy accept; }`,
      `flush chain ${t} input`,
      `flush chain ${t} output`,
      `add rule ${t} input meta mark ${mark} accept`,
      `add rule ${t} input ip daddr . tcp dport . ip saddr . tcp sport @conn4 drop`,
      `add rule ${t} input ip6 daddr . tcp dport . ip6 saddr . tcp sport @conn6 drop`,
      `add rule ${t} output meta mark ${mark} accept`,
      `add rule ${t} output ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop`,
      `add rule ${t} output ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop`,
      '',
    ].join('\n');
  }

  private namespace(path: string | undefined): { key: string; ns: NamespaceLock } {
    const key = netnsKey(path);
    let ns = this.namespaces.get(key);
    if (!ns) {
      const fd = key === this.ownKey ? -1 : openSync(path as string, 'r');
      ns = { path, fd, held: new Map() };
      try {
        this.run(ns, this.tableScript(), 'creating the lock table');
      } catch (err) {
        if (fd >= 0) closeSync(fd);
        throw err;
      }
      this.namespaces.set(key, ns);
    }
    return { key, ns };
  }

  /**
   * Prepares the daemon's own namespace: the table exists, its rules are current, and entries left by an
   * earlier run are gone (a daemon that starts holds no session yet). Returns whether locking works.
   */
  start(): boolean {
    try {
      this.run(undefined, `${this.tableScript()}flush set inet ${this.o.table} conn4\nflush set inet ${this.o.table} conn6\n`, 'reconciling the lock table');
      this.namespaces.set(this.ownKey, { path: undefined, fd: -1, held: new Map() });
      return true;
    } catch (err) {
      this.o.log.warn('network lock unavailable', { error: err instanceof Error ? err.message : String(err) });
      return false;
    }
  }

  /**
   * Drops every packet of these connections in the namespace at `path` (the daemon's own if undefined), in
   * one transaction. Returns the namespace's key, which unlock takes (the path may be gone by then).
   */
  lock(path: string | undefined, tuples: readonly LockTuple[]): string {
    const { key, ns } = this.namespace(path);
    const add = new Map<string, string[]>();
    for (const t of tuples) {
      const e = element(t);
      if (ns.held.has(e.text) || add.get(e.set)?.includes(e.text)) continue;
      add.set(e.set, [...(add.get(e.set) ?? []), e.text]);
    }
    if (add.size) {
      const script = [...add].map(([set, els]) => `add element inet ${this.o.table} ${set} { ${els.join(', ')} }`).join('\n');
      this.run(ns, `${script}\n`, 'locking');
    }
    for (const t of tuples) {
      const e = element(t);
      const h = ns.held.get(e.text);
      if (h) h.count++;
      else ns.held.set(e.text, { set: e.set, count: 1 });
    }
    this.o.log.info('network locked', { netns: ns.path ?? 'own', connections: tuples.length, transactions: this.transactions });
    return key;
  }

  /** Lets these connections' packets through again, in one transaction. Never throws: logs instead. */
  unlock(key: string, tuples: readonly LockTuple[]): void {
    const ns = this.namespaces.get(key);
    if (!ns || tuples.length === 0) return;
    const del = new Map<string, string[]>();
    for (const t of tuples) {
      const e = element(t);
      const h = ns.held.get(e.text);
      if (!h) continue;
      if (--h.count > 0) continue;
      ns.held.delete(e.text);
      del.set(h.set, [...(del.get(h.set) ?? []), e.text]);
    }
    if (!del.size) return;
    const script = [...del].map(([set, els]) => `delete element inet ${this.o.table} ${set} { ${els.join(', ')} }`).join('\n');
    try {
      this.run(ns, `${script}\n`, 'unlocking');
      this.o.log.info('network unlocked', { netns: ns.path ?? 'own', connections: tuples.length, transactions: this.transactions });
    } catch (err) {
      this.o.log.error('network unlock failed', { netns: ns.path ?? 'own', error: err instanceof Error ? err.message : String(err) });
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
        this.o.log.warn('removing the lock table failed', { netns: ns.path ?? 'own', error: err instanceof Error ? err.message : String(err) });
      }
      if (ns.fd >= 0) closeSync(ns.fd);
    }
    this.namespaces.clear();
  }
}
