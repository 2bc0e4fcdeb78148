// Test network topology: a peer namespace wired to several host namespaces that all carry the same
// service address, so a connection can move between hosts by switching the peer's route. Nothing is
// routed out of these namespaces; everything is removed by name in destroy().
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SERVICE_V4 = '10.77.0.1';
export const PEER_V4 = '10.77.0.2';
export const SERVICE_V6 = 'fd77::1';
export const PEER_V6 = 'fd77::2';

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ip(args: string[]): void {
  run('ip', args);
}

let counter = 0;

export class Topology {
  readonly peer: string;
  readonly hosts: string[];
  private active = 0;

  private constructor(
    peer: string,
    hosts: string[],
    private readonly link?: string,
  ) {
    this.peer = peer;
    this.hosts = hosts;
  }

  /**
   * A peer namespace and `hostCount` host namespaces, the first host routed. The host end of host i's
   * link is h<i>, or `hostLink` in every host (a connection bound to its interface can move).
   */
  static create(hostCount: number, hostLink?: string): Topology {
    const base = `soccrt${process.pid}x${counter++}`;
    const t = new Topology(
      `${base}p`,
      Array.from({ length: hostCount }, (_, i) => `${base}h${i}`),
      hostLink,
    );
    try {
      for (const ns of [t.peer, ...t.hosts]) {
        ip(['netns', 'add', ns]);
        ip(['-n', ns, 'link', 'set', 'lo', 'up']);
        // New interfaces skip duplicate address detection: addresses are usable at once.
        run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
      }
      t.hosts.forEach((host, i) => {
        const p = `p${i}`;
        const h = hostLink ?? `h${i}`;
        ip(['link', 'add', p, 'netns', t.peer, 'type', 'veth', 'peer', 'name', h, 'netns', host]);
        ip(['-n', t.peer, 'link', 'set', p, 'up']);
        ip(['-n', host, 'link', 'set', h, 'up']);
        ip(['-n', t.peer, 'addr', 'add', `${PEER_V4}/32`, 'dev', p]);
        ip(['-n', t.peer, 'addr', 'add', `${PEER_V6}/128`, 'dev', p, 'nodad']);
        ip(['-n', host, 'addr', 'add', `${SERVICE_V4}/32`, 'dev', h]);
        ip(['-n', host, 'addr', 'add', `${SERVICE_V6}/128`, 'dev', h, 'nodad']);
        ip(['-n', host, 'route', 'add', `${PEER_V4}/32`, 'dev', h]);
        ip(['-n', host, '-6', 'route', 'add', `${PEER_V6}/128`, 'dev', h]);
      });
      t.routeTo(0);
    } catch (err) {
      t.destroy();
      throw err;
    }
    return t;
  }

  /** Sends the peer's traffic for the service address to host `i`. */
  routeTo(i: number): void {
    ip(['-n', this.peer, 'route', 'replace', `${SERVICE_V4}/32`, 'dev', `p${i}`]);
    ip(['-n', this.peer, '-6', 'route', 'replace', `${SERVICE_V6}/128`, 'dev', `p${i}`]);
    this.active = i;
  }

  get activeHost(): number {
    return this.active;
  }

  /**
   * Drops every packet between the peer and host i at the peer's end, while the host's link stays up:
   * the host's kernel goes on transmitting (so its data is sent but never acknowledged) and the peer's
   * own packets never leave. The rule lives in the peer namespace and goes with it.
   */
  blackhole(i: number): void {
    const rules = [
      `table inet soccrt_cut${i} {`,
      `  chain in { type filter hook input priority 0; iifname "p${i}" drop; }`,
      `  chain out { type filter hook output priority 0; oifname "p${i}" drop; }`,
      '}',
    ].join('\n');
    execFileSync('ip', ['netns', 'exec', this.peer, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Lifts blackhole(i). */
  unblackhole(i: number): void {
    run('ip', ['netns', 'exec', this.peer, 'nft', 'delete', 'table', 'inet', `soccrt_cut${i}`]);
  }

  /** The host end of host i's link. */
  hostLink(i: number): string {
    return this.link ?? `h${i}`;
  }

  nsPath(ns: string): string {
    return `/run/netns/${ns}`;
  }

  destroy(): void {
    for (const ns of [this.peer, ...this.hosts]) {
      if (existsSync(`/run/netns/${ns}`)) {
        try {
          ip(['netns', 'del', ns]);
        } catch {
          /* best effort: reported by the leftover check */
        }
      }
    }
  }
}

/** Namespaces this test run created and failed to remove. */
export function leftoverNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`soccrt${process.pid}x`));
}

/** Entries in a daemon's lock sets in namespace `ns` (undefined: the root namespace); 0 when its table is gone. */
export function lockEntries(ns: string | undefined, table: string): number {
  let n = 0;
  for (const set of ['conn4', 'conn6']) {
    try {
      const out = ns ? run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'set', 'inet', table, set]) : run('nft', ['-j', 'list', 'set', 'inet', table, set]);
      const parsed = JSON.parse(out) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
      n += parsed.nftables.find((x) => x.set)?.set?.elem?.length ?? 0;
    } catch {
      /* no table: nothing held */
    }
  }
  return n;
}

/** The TCP sockets in namespace `ns`, one `ss -tanH` line each. */
export function tcpSockets(ns: string): string[] {
  return run('ip', ['netns', 'exec', ns, 'ss', '-tanH'])
    .split('\n')
    .filter((l) => l.trim() !== '');
}
