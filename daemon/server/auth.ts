// Who may call: the access policy and the authorization hook of the service. On a Unix socket a caller
// is the process at the other end (its uid, gid and groups from SO_PEERCRED / SO_PEERGROUPS, read when
// the daemon accepts the connection: see listeners.ts); on TCP it is the subject of the client
// certificate that the mTLS handshake verified. Anything the daemon cannot tie to an identity is
// UNAUTHENTICATED; an identity outside the allowlist is FORBIDDEN (PERMISSION_DENIED).
import { BlockList, isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { SoccrError } from '../../protocol/errors';
import type { PeerCredentials } from '../kernel/native';
import type * as grpc from '@grpc/grpc-js';

/** What authorization may look at: the transport peer, the auth context and the metadata. */
export type AuthorizableCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'metadata'>;

export interface AccessPolicy {
  /** uids allowed on Unix sockets; root (0) is always allowed */
  allowUids: readonly number[];
  /** gids allowed on Unix sockets: the caller's effective gid or one of its supplementary groups */
  allowGids: readonly number[];
  /** client certificate identities allowed on TLS listeners: a subject CN or a SAN value; '*' is any verified certificate */
  allowIdentities: readonly string[];
  /** uids that are admins over Unix sockets (allowed, and acting on every session); root always is */
  adminUids?: readonly number[];
  /** client certificate identities that are admins over TLS (allowed, and acting on every session) */
  adminIdentities?: readonly string[];
}

/**
 * Who is calling, as the rest of the daemon sees it: the same for every process and channel of one
 * identity, so that sessions, quotas and the policy follow the identity and not the connection.
 */
export interface Caller {
  /**
   * The identity: `uid:N` for a Unix caller (whatever its pid), `cert:NAME` for a TLS caller (the
   * certificate name the allowlist matched, whatever its address), `insecure` for plain loopback TCP.
   */
  id: string;
  /** for logs: who exactly (pid, gid; the certificate's peer address) */
  label: string;
  /** acts on every session, and the per-identity policy does not narrow it (root over a Unix socket, --admin-uid, --admin-identity, --insecure) */
  admin: boolean;
  /** Unix callers: their credentials as of connect() */
  uid?: number;
  gid?: number;
  groups?: readonly number[];
}

/** The caller when the service has no authorization hook (in-process test services): an admin. */
export const ANY_CALLER: Caller = { id: 'anyone', label: 'anyone', admin: true };

/** What the daemon knows about one accepted connection. */
export type ConnectionIdentity =
  /** a Unix socket; `cred` absent when the kernel would not say who connected */
  | { transport: 'unix'; cred?: PeerCredentials }
  /** plain TCP on a loopback address (--insecure): no identity, allowed by the operator's choice */
  | { transport: 'insecure-tcp'; remote: string };

/**
 * The connections the daemon accepted itself (Unix sockets, insecure loopback TCP) before handing them
 * to grpc-js. grpc-js gives a handler no way to reach its connection except `getPeer()`, made of the
 * socket's `remoteAddress` (and `remotePort`): the daemon gives each socket it accepted an own
 * remoteAddress that no other transport can produce ("unix-peer#N ...", "tcp-peer#N ..."; peers of
 * listeners grpc-js runs itself are "ip:port") and no port, and keeps what it learnt about the
 * connection under that key until the socket closes. A call whose peer is not here came in on a
 * listener grpc-js accepted itself: a TLS listener. Should grpc-js ever build getPeer() differently,
 * no key matches and every call is refused (UNAUTHENTICATED): this fails closed.
 */
export class ConnectionRegistry {
  private readonly byPeer = new Map<string, ConnectionIdentity>();
  private next = 1;

  /** Tags an accepted socket (before it goes to grpc-js); forgotten when the socket closes. */
  tag(socket: TaggableSocket, identity: ConnectionIdentity): string {
    const n = this.next++;
    const who = identity.transport === 'unix' ? (identity.cred ? credName(identity.cred) : 'unknown') : identity.remote;
    const key = `${identity.transport === 'unix' ? 'unix-peer' : 'tcp-peer'}#${n} ${who}`;
    // getPeer() is `${remoteAddress}:${remotePort}`, or remoteAddress alone when there is no port.
    Object.defineProperty(socket, 'remoteAddress', { value: key, configurable: true, enumerable: false });
    Object.defineProperty(socket, 'remotePort', { value: undefined, configurable: true, enumerable: false });
    this.byPeer.set(key, identity);
    socket.once('close', () => this.byPeer.delete(key));
    return key;
  }

  lookup(peer: string): ConnectionIdentity | undefined {
    return this.byPeer.get(peer);
  }

  get size(): number {
    return this.byPeer.size;
  }
}

/** The part of a net.Socket the registry touches. */
export interface TaggableSocket {
  once(event: 'close', listener: () => void): unknown;
}

function credName(c: PeerCredentials): string {
  return `uid=${c.uid} gid=${c.gid} pid=${c.pid}`;
}

/** The identities a client certificate carries: its subject CNs and its SAN values (bare and as TYPE:value). */
export function certificateIdentities(cert: PeerCertificate): string[] {
  const out: string[] = [];
  const cn = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.CN;
  if (typeof cn === 'string') out.push(cn);
  else if (Array.isArray(cn)) out.push(...cn);
  for (const { type, value } of parseSubjectAltName(cert.subjectaltname ?? '')) out.push(value, `${type}:${value}`);
  return out;
}

/**
 * Node's subjectaltname string: "DNS:a, IP Address:10.0.0.1, URI:spiffe://x". A value holding a comma,
 * quote or the like comes as a JSON string literal ("URI:\"a, DNS:b\""), so splitting on ", " would let
 * a crafted SAN smuggle in another name; this reads the quoted form whole.
 */
export function parseSubjectAltName(s: string): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const type = s.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (s[j] === '"') {
      let k = j + 1;
      while (k < s.length && s[k] !== '"') k += s[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(j, k + 1)) as string;
      } catch {
        break; // malformed: take nothing more from it
      }
      j = k + 1;
    } else {
      const end = s.indexOf(', ', j);
      value = s.slice(j, end < 0 ? s.length : end);
      j = end < 0 ? s.length : end;
    }
    out.push({ type, value });
    if (s.startsWith(', ', j)) j += 2;
    else if (j < s.length) break;
    i = j;
  }
  return out;
}

/**
 * The service's authorization hook for `policy`: Unix callers by uid/gid, TLS callers by certificate
 * identity, insecure loopback TCP callers allowed (as admins: see below). Returns who the caller is.
 */
export function makeAuthorizer(policy: AccessPolicy, registry: ConnectionRegistry): (call: AuthorizableCall, method: string) => Caller {
  const adminUids = new Set([0, ...(policy.adminUids ?? [])]);
  const uids = new Set([...adminUids, ...policy.allowUids]);
  const gids = new Set(policy.allowGids);
  const anyCert = policy.allowIdentities.includes('*');
  const adminIdentities = new Set(policy.adminIdentities ?? []);
  const identities = new Set([...policy.allowIdentities.filter((i) => i !== '*'), ...adminIdentities]);
  return (call, method) => {
    const peer = call.getPeer();
    const conn = registry.lookup(peer);
    if (conn?.transport === 'unix') {
      const c = conn.cred;
      if (!c) throw new SoccrError('UNAUTHENTICATED', 'the daemon could not read the credentials of this Unix socket connection');
      if (uids.has(c.uid) || gids.has(c.gid) || c.groups.some((g) => gids.has(g)))
        return { id: `uid:${c.uid}`, label: credName(c), admin: adminUids.has(c.uid), uid: c.uid, gid: c.gid, groups: c.groups };
      throw new SoccrError('FORBIDDEN', `${method}: uid ${c.uid} (gid ${c.gid}) is not allowed to call soccrd (see --allow-uid, --allow-gid)`);
    }
    // The operator's explicit choice, for development: every local user can reach this port and no one
    // can be told apart, so there is nobody to own a session or to key a policy on. Such callers keep
    // the freedom they always had: admins, one identity.
    if (conn?.transport === 'insecure-tcp') return { id: 'insecure', label: `insecure ${conn.remote}`, admin: true };
    // Accepted by grpc-js: a TLS listener, which only completes handshakes with verified client certificates.
    const auth = call.getAuthContext();
    const cert = auth.transportSecurityType === 'ssl' ? auth.sslPeerCertificate : undefined;
    if (!cert) throw new SoccrError('UNAUTHENTICATED', `${method}: no verified client certificate`);
    const names = certificateIdentities(cert);
    // The identity is the name the allowlist matched (an admin name first), never the peer's address:
    // every channel of one certificate name is one caller.
    const match =
      names.find((n) => adminIdentities.has(n)) ??
      names.find((n) => identities.has(n)) ??
      (anyCert ? (names[0] ?? `sha256:${cert.fingerprint256}`) : undefined);
    if (match !== undefined) return { id: `cert:${match}`, label: `cert ${match} from ${peer}`, admin: adminIdentities.has(match) };
    throw new SoccrError(
      'FORBIDDEN',
      `${method}: client certificate ${names.length ? names.join(', ') : cert.fingerprint256} is not allowed to call soccrd (see --allow-identity)`,
    );
  };
}

// ---- addresses ---------------------------------------------------------------------------------

/** host:port or [v6]:port. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:[\]]+):(\d+)$/.exec(addr);
  if (!m) throw new Error(`${addr}: give host:port, [ipv6]:port or unix:///absolute/path`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${addr}: port out of range`);
  return { host: m[1], port };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** A literal loopback address: 127.0.0.0/8, ::1 (any spelling) or ::ffff:127.x.y.z; names are not resolved. */
export function isLoopback(host: string): boolean {
  const v = isIP(host);
  return v !== 0 && LOOPBACK.check(host, v === 4 ? 'ipv4' : 'ipv6');
}
