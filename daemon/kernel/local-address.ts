// Whether an IP address is one of a network namespace's own, as the kernel delivers to it locally: an
// address of one of its interfaces that are up, or any address in the prefix of an IPv4 address on a
// loopback device (127.0.0.1/8 makes all of 127/8 local). Read with getifaddrs (Node's
// os.networkInterfaces) while this thread is inside the namespace.
import { networkInterfaces } from 'node:os';
import { NetnsHandle } from './netns';
import { SocketAddress, isMappedIPv4, parseIPv4, parseIPv6 } from '../../protocol/address';

/** 4 bytes for IPv4 and IPv4-mapped IPv6 addresses, else 16. */
function addressBytes(ip: string): Buffer {
  if (!ip.includes(':')) return parseIPv4(ip);
  const b = parseIPv6(ip.split('%')[0]);
  return isMappedIPv4({ family: 'ipv6', ip, port: 0 }) ? b.subarray(12) : b;
}

function inPrefix(a: Buffer, b: Buffer, bits: number): boolean {
  for (let i = 0; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

/**
 * How long one reading of a namespace's addresses answers for it: a restore of many half-closed
 * connections reads them once (each reading costs about 0.3 ms: two setns and a netlink dump), and an
 * address that moves is seen within this time.
 */
const FRESH_MS = 100;
const readings = new WeakMap<NetnsHandle, { at: number; interfaces: ReturnType<typeof networkInterfaces> }>();
let homeReading: { at: number; interfaces: ReturnType<typeof networkInterfaces> } | undefined;

function interfacesOf(ns: NetnsHandle | undefined): ReturnType<typeof networkInterfaces> {
  const now = Date.now();
  const cached = ns ? readings.get(ns) : homeReading;
  if (cached && now - cached.at < FRESH_MS) return cached.interfaces;
  const reading = { at: now, interfaces: ns ? ns.run(() => networkInterfaces()) : networkInterfaces() };
  if (ns) readings.set(ns, reading);
  else homeReading = reading;
  return reading.interfaces;
}

/** True if `addr`'s IP is local to the namespace (`ns`, or this thread's own if undefined), on its scope's interface if it has one. */
export function isLocalAddress(ns: NetnsHandle | undefined, addr: SocketAddress): boolean {
  const want = addressBytes(addr.ip);
  const interfaces = interfacesOf(ns);
  // A link-local address is local only on the interface of its scope.
  const lists = addr.scope === undefined ? Object.values(interfaces) : [interfaces[addr.scope]];
  for (const list of lists) {
    for (const a of list ?? []) {
      const have = addressBytes(a.address);
      if (have.length !== want.length) continue;
      if (have.equals(want)) return true;
      const prefix = Number(a.cidr?.split('/')[1] ?? 32);
      if (a.internal && have.length === 4 && inPrefix(have, want, prefix)) return true;
    }
  }
  return false;
}
