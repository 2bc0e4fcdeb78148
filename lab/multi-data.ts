// What the two ends of a multi fixture's connections agree on: the bytes each end sends (seeded streams)
// and the key that names a connection. Shared by the fixture process (lab/fixtures/multi.ts) and its
// driver (lab/multi.ts).
import { SocketAddress, formatAddress, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../protocol/address';
import { fillStream } from './stream';

// ---- streams -----------------------------------------------------------------------------------

const BASE_SEED = 0x79;
const PERIOD = 1_000_003; // stream.ts's period (prime)
const PHASE_STEP = 104_729; // prime, so seeds below PERIOD get distinct phases

/** The seed connection i's server end sends (and its client end expects). */
export const serverSeed = (i: number): number => 1000 + i;
/** The seed connection i's client end sends (and its server end expects). */
export const clientSeed = (i: number): number => 2000 + i;

/**
 * Writes bytes [offset, offset+len) of multi stream `seed` into out at outOff. A multi stream is
 * stream.ts's stream BASE_SEED read from a phase of its own ((seed * PHASE_STEP) mod PERIOD): as
 * deterministic as a stream.ts stream, and no two seeds carry the same bytes at the same offset, but
 * all share one 1 MB block, where a stream.ts block per seed would cost each process 200 MB and
 * seconds of hashing for 100 connections.
 */
export function fillMulti(seed: number, offset: number, out: Buffer, outOff: number, len: number): void {
  fillStream(BASE_SEED, offset + ((seed * PHASE_STEP) % PERIOD), out, outOff, len);
}

export function multiBytes(seed: number, offset: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  fillMulti(seed, offset, out, 0, len);
  return out;
}

// ---- keys --------------------------------------------------------------------------------------

/** The address with its ip in canonical text form (dotted quad; RFC 5952, mapped as ::ffff:a.b.c.d). */
export function normalizeAddress(a: SocketAddress): SocketAddress {
  const ip = a.family === 'ipv4' ? formatIPv4(parseIPv4(a.ip)) : formatIPv6(parseIPv6(a.ip));
  return { family: a.family, ip, port: a.port };
}

/**
 * A connection's key: its 4-tuple as its owner sees it, "local-remote" in formatAddress's forms
 * ("10.79.0.100:5000-10.79.0.10:40000", "[fd79::100]:5000-[fd79::10]:40000"; an IPv4-mapped address
 * on an IPv6 socket stays "[::ffff:a.b.c.d]:port"). The fixture's quiesce offsets are keyed so, and
 * adopt mode matches each handed-over socket's `local`/`remote` to them the same way.
 */
export function connKey(local: SocketAddress, remote: SocketAddress): string {
  return `${formatAddress(normalizeAddress(local))}-${formatAddress(normalizeAddress(remote))}`;
}

function unmap(endpoint: string): string {
  const m = /^\[::ffff:(\d+\.\d+\.\d+\.\d+)\]:(\d+)$/i.exec(endpoint);
  return m ? `${m[1]}:${m[2]}` : endpoint;
}

/** The key the other end of this connection has (IPv4-mapped addresses taken as plain IPv4). */
export function peerKey(key: string): string {
  const [local, remote] = key.split('-');
  return `${unmap(remote)}-${unmap(local)}`;
}

export function pairingKey(key: string): string {
  const [local, remote] = key.split('-');
  return `${unmap(local)}-${unmap(remote)}`;
}
