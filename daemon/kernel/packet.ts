// Hand-built TCP segments for the raw socket: the peer's FIN (or ACK) re-injected into a restored
// half-closed connection, as if the peer had sent it again.
import { SocketAddress, isMappedIPv4, parseIPv4, parseIPv6 } from '../../protocol/address';

export const TH_FIN = 0x01;
export const TH_ACK = 0x10;

export interface SegmentSpec {
  /** The segment's source: the connection's remote end. */
  from: SocketAddress;
  /** Its destination: the restored socket's local end. */
  to: SocketAddress;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

function sum16(b: Buffer, start: number, end: number, acc: number): number {
  let s = acc;
  for (let i = start; i + 1 < end; i += 2) s += b.readUInt16BE(i);
  if ((end - start) & 1) s += b[end - 1] << 8;
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return ~x & 0xffff;
}

/** The IP version a segment travels in: a mapped connection's packets are IPv4. */
export function wireFamily(a: SocketAddress): 4 | 6 {
  return a.family === 'ipv4' || isMappedIPv4(a) ? 4 : 6;
}

function v4bytes(a: SocketAddress): Buffer {
  return parseIPv4(a.family === 'ipv4' ? a.ip : a.ip.slice(a.ip.lastIndexOf(':') + 1));
}

/** Builds a whole IP datagram (header included) carrying one 20-byte TCP header. Returns its length. */
export function buildSegment(s: SegmentSpec, out: Buffer): number {
  const tcpLen = 20;
  const v = wireFamily(s.to);
  const ipLen = v === 4 ? 20 : 40;
  const total = ipLen + tcpLen;
  out.fill(0, 0, total);
  const src = v === 4 ? v4bytes(s.from) : parseIPv6(s.from.ip);
  const dst = v === 4 ? v4bytes(s.to) : parseIPv6(s.to.ip);
  if (v === 4) {
    out[0] = 0x45;
    out.writeUInt16BE(total, 2);
    out[8] = 64; // TTL
    out[9] = 6; // TCP
    src.copy(out, 12);
    dst.copy(out, 16);
    out.writeUInt16BE(fold(sum16(out, 0, 20, 0)), 10);
  } else {
    out.writeUInt32BE(0x60000000, 0);
    out.writeUInt16BE(tcpLen, 4);
    out[6] = 6; // next header: TCP
    out[7] = 64; // hop limit
    src.copy(out, 8);
    dst.copy(out, 24);
  }
  const t = ipLen;
  out.writeUInt16BE(s.from.port, t);
  out.writeUInt16BE(s.to.port, t + 2);
  out.writeUInt32BE(s.seq >>> 0, t + 4);
  out.writeUInt32BE(s.ack >>> 0, t + 8);
  out[t + 12] = (tcpLen / 4) << 4;
  out[t + 13] = s.flags;
  out.writeUInt16BE(Math.min(s.window, 0xffff), t + 14);
  // Checksum over the pseudo-header (addresses, protocol, length) and the segment.
  let acc = sum16(src, 0, src.length, 0) + sum16(dst, 0, dst.length, 0) + 6 + tcpLen;
  acc = sum16(out, t, t + tcpLen, acc);
  out.writeUInt16BE(fold(acc), t + 16);
  return total;
}
