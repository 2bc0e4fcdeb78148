// A small LAN for live-migration tests: a switch namespace with a Linux bridge, two host namespaces A
// and B and a client namespace C, each wired to the bridge by a veth. A service address (v4 and v6)
// starts on A and moves between A and B the way a failover address moves on a real LAN: deleted on
// one host, added on the other, and announced by the new holder with a gratuitous ARP and an
// unsolicited neighbour advertisement, which the clients' kernels take into their neighbour tables.
//
// Everything stays inside these namespaces: the addresses are in a test-only range (10.79.0.0/24,
// fd79::/64) with no default route and no link out of the bridge. destroy() removes every namespace.
//
// The announcement is the kernel's own: A and B have arp_notify and ndisc_notify set, under which a
// NETDEV_CHANGEADDR event makes the kernel send a gratuitous ARP request for each IPv4 address of the
// device and an unsolicited NA (override flag set) for each IPv6 one. Setting the device's MAC address
// to the value it already has raises that event without changing anything else, so
// `ip link set dev eth0 address <its own MAC>` is an `arping -U` plus `ndsend` that needs no package.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const LAN_V4_PREFIX = 24;
export const LAN_V6_PREFIX = 64;
export const SERVICE_V4 = '10.79.0.100';
export const SERVICE_V6 = 'fd79::100';

export type Host = 'A' | 'B';
export type Role = 'S' | 'A' | 'B' | 'C';

/** Addresses and MACs of the machines on the LAN (each machine's interface is `eth0`). */
export const LAN_NODES: Record<Exclude<Role, 'S'>, { v4: string; v6: string; mac: string }> = {
  A: { v4: '10.79.0.1', v6: 'fd79::1', mac: '02:79:00:00:00:01' },
  B: { v4: '10.79.0.2', v6: 'fd79::2', mac: '02:79:00:00:00:02' },
  C: { v4: '10.79.0.10', v6: 'fd79::10', mac: '02:79:00:00:00:0a' },
};

/** The interface of A, B and C on the LAN (each in its own namespace). */
export const LAN_DEV = 'eth0';
const BRIDGE = 'br0';

const PREFIX = `soccrt${process.pid}l`;
let counter = 0;
const live = new Set<Lan>();

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One step of a command sequence, as argv; also rendered into a shell command. */
type Step = string[];

/** One argument as a POSIX shell word (quoted only when it needs to be). */
export function shellQuote(a: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export interface Neighbour {
  lladdr: string | null;
  state: string[];
}

export class Lan {
  /** Namespace names by role: S the switch, A and B the hosts, C the clients. */
  readonly ns: Record<Role, string>;
  /** The namespaces this LAN made (only these are removed: a name clash never removes another's). */
  private readonly created: string[] = [];

  private constructor(base: string) {
    this.ns = { S: `${base}s`, A: `${base}a`, B: `${base}b`, C: `${base}c` };
  }

  /** Builds the LAN; the service address is on A. On failure removes whatever it made, then throws. */
  static create(): Lan {
    const lan = new Lan(`${PREFIX}${counter++}`);
    live.add(lan);
    try {
      lan.build();
    } catch (err) {
      lan.destroy();
      throw err;
    }
    return lan;
  }

  private build(): void {
    const { S } = this.ns;
    for (const role of ['S', 'A', 'B', 'C'] as const) {
      const ns = this.ns[role];
      run('ip', ['netns', 'add', ns]);
      this.created.push(ns);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // Before any interface exists, so that every interface inherits it: no duplicate address
      // detection (addresses are usable at once), announcements on address changes (see the top).
      const sysctls = [
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv4.conf.default.arp_notify=1',
        'net.ipv4.conf.all.arp_notify=1',
        'net.ipv6.conf.default.ndisc_notify=1',
        'net.ipv6.conf.all.ndisc_notify=1',
      ];
      run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...sysctls]);
    }
    // A plain learning switch: no STP (ports forward at once), no multicast snooping (NAs and ARPs flood).
    run('ip', ['-n', S, 'link', 'add', 'name', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    run('ip', ['-n', S, 'link', 'set', BRIDGE, 'up']);
    for (const role of ['A', 'B', 'C'] as const) {
      const ns = this.ns[role];
      const node = LAN_NODES[role];
      const port = `p${role.toLowerCase()}`;
      run('ip', ['link', 'add', 'name', port, 'netns', S, 'type', 'veth', 'peer', 'name', LAN_DEV, 'netns', ns, 'address', node.mac]);
      run('ip', ['-n', S, 'link', 'set', port, 'master', BRIDGE]);
      run('ip', ['-n', S, 'link', 'set', port, 'up']);
      // An announcement overrides the entry however recently it changed (older kernels honour
      // locktime even for gratuitous ARP). Per device: neigh/default exists only in the first namespace.
      run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.neigh.${LAN_DEV}.locktime=0`]);
      run('ip', ['-n', ns, 'link', 'set', LAN_DEV, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${node.v4}/${LAN_V4_PREFIX}`, 'dev', LAN_DEV]);
      run('ip', ['-n', ns, 'addr', 'add', `${node.v6}/${LAN_V6_PREFIX}`, 'dev', LAN_DEV, 'nodad']);
    }
    for (const step of this.addServiceSteps('A')) run(step[0], step.slice(1));
  }

  /** The path of a namespace, for soccrd's `netns` fields: by role ('S', 'A', 'B', 'C') or by name. */
  nsPath(name: string): string {
    const ns = (this.ns as Record<string, string | undefined>)[name] ?? name;
    return `/run/netns/${ns}`;
  }

  /** The namespace name of a role. */
  nsName(role: Role): string {
    return this.ns[role];
  }

  private removeServiceSteps(from: Host): Step[] {
    const ns = this.ns[from];
    return [
      ['ip', '-n', ns, 'addr', 'del', `${SERVICE_V4}/32`, 'dev', LAN_DEV],
      ['ip', '-n', ns, 'addr', 'del', `${SERVICE_V6}/128`, 'dev', LAN_DEV],
    ];
  }

  private addServiceSteps(to: Host): Step[] {
    const ns = this.ns[to];
    return [
      ['ip', '-n', ns, 'addr', 'add', `${SERVICE_V4}/32`, 'dev', LAN_DEV],
      ['ip', '-n', ns, 'addr', 'add', `${SERVICE_V6}/128`, 'dev', LAN_DEV, 'nodad'],
    ];
  }

  /** Gratuitous ARP and unsolicited NA for every address of `host` (see the top of this file). */
  private announceSteps(host: Host): Step[] {
    return [['ip', '-n', this.ns[host], 'link', 'set', 'dev', LAN_DEV, 'address', LAN_NODES[host].mac]];
  }

  private moveSteps(from: Host, to: Host): Step[] {
    if (from === to) throw new Error(`moveServiceAddress: from and to are both ${from}`);
    return [...this.removeServiceSteps(from), ...this.addServiceSteps(to), ...this.announceSteps(to)];
  }

  /**
   * Moves the service addresses (v4 and v6) from one host to the other and announces the move from
   * the new holder. Throws if `from` does not hold them.
   */
  moveServiceAddress(from: Host, to: Host): void {
    for (const step of this.moveSteps(from, to)) run(step[0], step.slice(1));
  }

  /** The same as moveServiceAddress, as one shell command (for a hook run by another process). */
  moveServiceCommand(from: Host, to: Host): string {
    return this.moveSteps(from, to)
      .map((s) => s.map(shellQuote).join(' '))
      .join(' && ');
  }

  /** Sends the announcement again from `host` (gratuitous ARP + unsolicited NA), moving nothing. */
  announce(host: Host): void {
    for (const step of this.announceSteps(host)) run(step[0], step.slice(1));
  }

  /** Addresses configured on `role`'s LAN interface (without prefix lengths). */
  addresses(role: Exclude<Role, 'S'>): string[] {
    const out = JSON.parse(run('ip', ['-n', this.ns[role], '-j', 'addr', 'show', 'dev', LAN_DEV])) as Array<{ addr_info?: Array<{ local: string }> }>;
    return out.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
  }

  /** Which host holds the service address now: 'A', 'B', or null (none, or only one family). */
  serviceHost(): Host | null {
    const holders = (['A', 'B'] as const).filter((h) => {
      const a = this.addresses(h);
      return a.includes(SERVICE_V4) && a.includes(SERVICE_V6);
    });
    return holders.length === 1 ? holders[0] : null;
  }

  /** `role`'s neighbour entry for `ip` on its LAN interface, or null if it has none. */
  neighbour(ip: string, role: Exclude<Role, 'S'> = 'C'): Neighbour | null {
    const out = JSON.parse(run('ip', ['-n', this.ns[role], '-j', 'neigh', 'show', 'to', ip, 'dev', LAN_DEV])) as Array<{
      dst: string;
      lladdr?: string;
      state?: string[];
    }>;
    const e = out.find((n) => n.dst === ip);
    return e ? { lladdr: e.lladdr ?? null, state: e.state ?? [] } : null;
  }

  /** Removes every namespace this LAN made that still exists (best effort, never throws). */
  destroy(): void {
    for (const ns of this.created) {
      if (existsSync(`/run/netns/${ns}`)) {
        try {
          run('ip', ['netns', 'del', ns]);
        } catch {
          /* reported by leftover() */
        }
      }
    }
    live.delete(this);
  }

  /** The namespaces this LAN made that still exist. */
  leftover(): string[] {
    const mine = new Set(this.created);
    return listNamespaces().filter((n) => mine.has(n));
  }
}

function listNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.length > 0);
}

/** Destroys every LAN this process created and has not destroyed yet (for afterEach). */
export function destroyLans(): void {
  for (const lan of [...live]) lan.destroy();
}

/** Namespaces of any LAN of this process that still exist. */
export function leftoverLanNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(PREFIX));
}
