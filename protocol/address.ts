// Socket addresses: conversion between { family, ip, port } and the kernel's sockaddr_in/sockaddr_in6.
import { isIPv4, isIPv6 } from 'node:net';
import { type AddressMsg, AddressFamily } from './messages';

/** Linux address family numbers: what sockaddr_in/sockaddr_in6 and socket diagnostics carry. */
export const AF_INET = 2;
export const AF_INET6 = 10;

export type Family = 'ipv4' | 'ipv6';

export interface SocketAddress {
  family: Family;
  /** Textual address: dotted quad, or IPv6 (an IPv4-mapped one as ::ffff:a.b.c.d). */
  ip: string;
  port: number;
  /**
   * An IPv6 link-local address's scope (sin6_scope_id), by interface name as the socket's namespace
   * calls it; absent for every other address.
   */
  scope?: string;
}

export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;

export function parseIPv4(ip: string): Buffer {
  if (!isIPv4(ip)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split('.').map((p) => Number(p)));
}

export function parseIPv6(ip: string): Buffer {
  if (!isIPv6(ip)) throw new TypeError(`not an IPv6 address: ${ip}`);
  const out = Buffer.alloc(16);
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    text = `${text.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const fill = 8 - headGroups.length - tailGroups.length;
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array<string>(fill).fill('0'), ...tailGroups];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function formatIPv4(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text form; IPv4-mapped addresses as ::ffff:a.b.c.d. */
export function formatIPv6(b: Buffer, off = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(off + i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** An IPv6 link-local address (fe80::/10): it means something only together with its interface. */
export function isLinkLocal(addr: SocketAddress): boolean {
  if (addr.family !== 'ipv6' || !isIPv6(addr.ip)) return false;
  const b = parseIPv6(addr.ip);
  return b[0] === 0xfe && (b[1] & 0xc0) === 0x80;
}

export function isMappedIPv4(addr: SocketAddress): boolean {
  return addr.family === 'ipv6' && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr.ip);
}

/** Writes a sockaddr for `addr` into `out` at offset 0; returns its length. */
export function encodeSockaddr(addr: SocketAddress, out: Buffer): number {
  if (addr.family === 'ipv4') {
    out.fill(0, 0, SOCKADDR_IN_LEN);
    out.writeUInt16LE(AF_INET, 0);
    out.writeUInt16BE(addr.port, 2);
    parseIPv4(addr.ip).copy(out, 4);
    return SOCKADDR_IN_LEN;
  }
  out.fill(0, 0, SOCKADDR_IN6_LEN);
  out.writeUInt16LE(AF_INET6, 0);
  out.writeUInt16BE(addr.port, 2);
  parseIPv6(addr.ip).copy(out, 8);
  return SOCKADDR_IN6_LEN;
}

export function decodeSockaddr(b: Buffer, len: number): SocketAddress {
  const family = b.readUInt16LE(0);
  if (family === AF_INET && len >= SOCKADDR_IN_LEN) {
    return { family: 'ipv4', ip: formatIPv4(b, 4), port: b.readUInt16BE(2) };
  }
  if (family === AF_INET6 && len >= SOCKADDR_IN6_LEN) {
    return { family: 'ipv6', ip: formatIPv6(b, 8), port: b.readUInt16BE(2) };
  }
  throw new TypeError(`unsupported address family ${family}`);
}

export function formatAddress(a: SocketAddress): string {
  return a.family === 'ipv6' ? `[${a.ip}${a.scope ? `%${a.scope}` : ''}]:${a.port}` : `${a.ip}:${a.port}`;
}

// ---- the wire form (soccr.v1.SocketAddress) --------------------------------------------------------

/** soccr.v1.AddressFamily of each family: the one place the two are mapped. */
export const WIRE_FAMILY = { ipv4: AddressFamily.IPV4, ipv6: AddressFamily.IPV6 } as const satisfies Readonly<Record<Family, AddressFamily>>;

/** The family a soccr.v1.AddressFamily number names, or undefined for any other number. */
export function familyFromWire(n: number): Family | undefined {
  return n === WIRE_FAMILY.ipv4 ? 'ipv4' : n === WIRE_FAMILY.ipv6 ? 'ipv6' : undefined;
}

export function addressToMsg(a: SocketAddress): AddressMsg {
  return { family: WIRE_FAMILY[a.family], ip: a.ip, port: a.port, scopeInterface: a.scope ?? '' };
}

export function addressFromMsg(a: AddressMsg | null | undefined): SocketAddress {
  if (!a) return { family: 'ipv4', ip: '0.0.0.0', port: 0 };
  const out: SocketAddress = { family: familyFromWire(a.family) ?? 'ipv4', ip: a.ip, port: a.port };
  if (a.scopeInterface) out.scope = a.scopeInterface;
  return out;
}

export function formatAddressMsg(a: AddressMsg | null | undefined): string {
  if (!a) return '-';
  return a.family === WIRE_FAMILY.ipv6 ? `[${a.ip}${a.scopeInterface ? `%${a.scopeInterface}` : ''}]:${a.port}` : `${a.ip}:${a.port}`;
}
