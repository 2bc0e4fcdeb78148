// The wire form of a saved state: SavedConnection <-> soccr.v1.ConnectionState (protos/soccr/v1/state.proto).
//
// encodeState refuses values the format cannot carry exactly (a u32 out of range, a malformed address)
// rather than letting protobuf wrap them silently. decodeState checks structure only: that the bytes
// parse, that the version is known, that every required part is present and every value is in range.
// Whether the state is consistent enough to restore (queue lengths, MSS, supported TCP state, ...) is
// the engine's call (validateSaved in engine.ts), since a streaming header carries no queue bytes.
import { isIPv4, isIPv6 } from 'node:net';
import * as protobuf from 'protobufjs';
import { SoccrError } from './errors';
import { type Family, type SocketAddress, WIRE_FAMILY, familyFromWire, isLinkLocal } from './address';
import { protoRoot } from './proto';
import { RepairWindow, STATE_VERSION, SavedConnection, TcpState, UserSocketOptions, isTcpState } from './saved-state';

// ---- schema ------------------------------------------------------------------------------------

const ConnectionStateType = protoRoot.lookupType('soccr.v1.ConnectionState');

/** protobufjs decodes into plain data; everything read from it is checked before use. */
type Plain = Record<string, unknown>;

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true };

const U32_MAX = 0xffffffff;
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

// ---- encode ------------------------------------------------------------------------------------

/** Serializes a saved state. Deterministic: the same state always gives the same bytes. */
export function encodeState(s: SavedConnection): Buffer {
  const out = ConnectionStateType.encode(stateToObject(s)).finish();
  return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * A saved state as a plain soccr.v1.ConnectionState object (camelCase fields, numeric enums), the shape
 * grpc-js and protobufjs take; refuses values the format cannot carry exactly.
 */
export function stateToObject(s: SavedConnection): Record<string, unknown> {
  const bad = (msg: string): never => {
    throw new SoccrError('INVALID_STATE', `cannot encode saved state: ${msg}`);
  };
  const u32 = (name: string, v: number): number => {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) bad(`${name} ${v} is not a u32`);
    return v;
  };
  const i32 = (name: string, v: number): number => {
    if (!Number.isInteger(v) || v < I32_MIN || v > I32_MAX) bad(`${name} ${v} is not an i32`);
    return v;
  };
  const bool = (name: string, v: boolean): boolean => {
    if (typeof v !== 'boolean') bad(`${name} is not a boolean`);
    return v;
  };
  const bytes = (name: string, v: Buffer): Buffer => {
    if (!(v instanceof Uint8Array)) bad(`${name} is not a Buffer`);
    return v;
  };
  const family = (name: string, f: Family): number => {
    const n = WIRE_FAMILY[f];
    if (n === undefined) bad(`${name} ${f} is not an address family`);
    return n;
  };
  const address = (name: string, a: SocketAddress): Plain => {
    if (a === null || typeof a !== 'object') bad(`${name} address missing`);
    const problem = addressProblem(a.family, a.ip, a.port, a.scope);
    if (problem) bad(`${name} ${problem}`);
    return { family: WIRE_FAMILY[a.family], ip: a.ip, port: a.port, scopeInterface: a.scope ?? '' };
  };
  const u53 = (name: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 0) bad(`${name} ${v} is not a whole number of microseconds`);
    return v;
  };
  const optional = (name: string, v: number | undefined): number | undefined => (v === undefined ? undefined : i32(name, v));
  if (typeof TcpState[s.state] !== 'string') bad(`state ${s.state} is not a TCP state`);
  const o = s.options;
  if (o === null || typeof o !== 'object') bad('socket options missing');
  if (typeof o.congestion !== 'string') bad('options.congestion is not a string');
  if (typeof o.bindDevice !== 'string' || !isInterfaceName(o.bindDevice, true)) bad('options.bindDevice is not an interface name');

  const msg: Plain = {
    version: u32('version', s.version),
    state: s.state,
    socketFamily: family('socketFamily', s.socketFamily),
    local: address('local', s.local),
    remote: address('remote', s.remote),
    inqSeq: u32('inqSeq', s.inqSeq),
    outqSeq: u32('outqSeq', s.outqSeq),
    inqLen: u32('inqLen', s.inqLen),
    outqLen: u32('outqLen', s.outqLen),
    unsentLen: u32('unsentLen', s.unsentLen),
    mssClamp: u32('mssClamp', s.mssClamp),
    tcpOptions: u32('tcpOptions', s.tcpOptions),
    sndWscale: u32('sndWscale', s.sndWscale),
    rcvWscale: u32('rcvWscale', s.rcvWscale),
    timestamp: u32('timestamp', s.timestamp),
    recvQueue: bytes('recvQueue', s.recvQueue),
    sendQueue: bytes('sendQueue', s.sendQueue),
    options: {
      reuseAddr: bool('options.reuseAddr', o.reuseAddr),
      noDelay: bool('options.noDelay', o.noDelay),
      cork: bool('options.cork', o.cork),
      keepAlive: bool('options.keepAlive', o.keepAlive),
      keepIdle: i32('options.keepIdle', o.keepIdle),
      keepIntvl: i32('options.keepIntvl', o.keepIntvl),
      keepCnt: i32('options.keepCnt', o.keepCnt),
      userTimeout: i32('options.userTimeout', o.userTimeout),
      congestion: o.congestion,
      sndBuf: i32('options.sndBuf', o.sndBuf),
      rcvBuf: i32('options.rcvBuf', o.rcvBuf),
      tos: i32('options.tos', o.tos),
      mark: i32('options.mark', o.mark),
      bufLock: i32('options.bufLock', o.bufLock),
      ttl: optional('options.ttl', o.ttl),
      priority: optional('options.priority', o.priority),
      rcvLowat: i32('options.rcvLowat', o.rcvLowat),
      rcvTimeoutUs: u53('options.rcvTimeoutUs', o.rcvTimeoutUs),
      sndTimeoutUs: u53('options.sndTimeoutUs', o.sndTimeoutUs),
      lingerSeconds: optional('options.lingerSeconds', o.lingerSeconds),
      reusePort: bool('options.reusePort', o.reusePort),
      v6only: bool('options.v6only', o.v6only),
      freebind: bool('options.freebind', o.freebind),
      bindDevice: o.bindDevice,
      notsentLowat: u32('options.notsentLowat', o.notsentLowat),
      windowClamp: u32('options.windowClamp', o.windowClamp),
    },
  };
  if (s.window !== undefined) {
    const w = s.window;
    msg.window = {
      sndWl1: u32('window.sndWl1', w.sndWl1),
      sndWnd: u32('window.sndWnd', w.sndWnd),
      maxWindow: u32('window.maxWindow', w.maxWindow),
      rcvWnd: u32('window.rcvWnd', w.rcvWnd),
      rcvWup: u32('window.rcvWup', w.rcvWup),
    };
  }
  return msg;
}

// ---- decode ------------------------------------------------------------------------------------

/**
 * Parses and structurally validates a saved state. Throws SoccrError('INVALID_STATE') for bytes that
 * are not a ConnectionState, an unknown version, a missing address or options, or an out-of-range value.
 * The queues come back as Buffers of their own, not views into `b`. Like engine.save(), the result
 * always has a `window` key, undefined when the state carries no repair window.
 */
export function decodeState(b: Buffer): SavedConnection {
  const bad = (msg: string, cause?: unknown): never => {
    throw new SoccrError('INVALID_STATE', `invalid saved state: ${msg}`, cause);
  };
  if (!(b instanceof Uint8Array)) bad('expected a Buffer');
  let o: Plain = {};
  try {
    o = ConnectionStateType.toObject(ConnectionStateType.decode(b), TO_OBJECT);
  } catch (err) {
    bad(`corrupt or truncated encoding (${b.length} bytes): ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return stateFromObject(o);
}

/**
 * Validates a plain soccr.v1.ConnectionState object (as protobufjs or grpc-js decode it, with numeric
 * enums and longs as numbers) into a saved state. Throws SoccrError('INVALID_STATE').
 */
export function stateFromObject(input: unknown): SavedConnection {
  const bad = (msg: string, cause?: unknown): never => {
    throw new SoccrError('INVALID_STATE', `invalid saved state: ${msg}`, cause);
  };
  if (!isPlain(input)) return bad('not a message');
  const o = input;

  const version = u32Of(o, 'version', bad);
  if (version !== STATE_VERSION) {
    bad(version === 0 ? 'no version (not a saved state?)' : `unknown version ${version}, expected ${STATE_VERSION}`);
  }
  const state = u32Of(o, 'state', bad);
  if (!isTcpState(state)) return bad(`state ${state} is not a TCP state`);
  const window = o.window;
  return {
    version,
    state,
    socketFamily: familyOf(u32Of(o, 'socketFamily', bad), 'socketFamily', bad),
    local: addressOf(o.local, 'local', bad),
    remote: addressOf(o.remote, 'remote', bad),
    inqSeq: u32Of(o, 'inqSeq', bad),
    outqSeq: u32Of(o, 'outqSeq', bad),
    inqLen: u32Of(o, 'inqLen', bad),
    outqLen: u32Of(o, 'outqLen', bad),
    unsentLen: u32Of(o, 'unsentLen', bad),
    mssClamp: u32Of(o, 'mssClamp', bad),
    tcpOptions: u32Of(o, 'tcpOptions', bad),
    sndWscale: u32Of(o, 'sndWscale', bad),
    rcvWscale: u32Of(o, 'rcvWscale', bad),
    timestamp: u32Of(o, 'timestamp', bad),
    window: window === undefined || window === null ? undefined : windowOf(window, bad),
    recvQueue: bytesOf(o, 'recvQueue', bad),
    sendQueue: bytesOf(o, 'sendQueue', bad),
    options: optionsOf(o.options, bad),
  };
}

type Bad = (msg: string) => never;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null;
}

function u32Of(o: Plain, key: string, bad: Bad, where = ''): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > U32_MAX) bad(`${where}${key} is not a u32`);
  return v;
}

function i32Of(o: Plain, key: string, bad: Bad, where = ''): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < I32_MIN || v > I32_MAX) bad(`${where}${key} is not an i32`);
  return v;
}

function boolOf(o: Plain, key: string, bad: Bad, where = ''): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') bad(`${where}${key} is not a boolean`);
  return v;
}

/** A field with explicit presence (proto3 `optional`): undefined when absent. */
function optionalI32Of(o: Plain, key: string, bad: Bad, where = ''): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : i32Of(o, key, bad, where);
}

/** A uint64 as a number: protobufjs gives a number (longs: Number) that may have lost precision above 2^53. */
function u53Of(o: Plain, key: string, bad: Bad, where = ''): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${where}${key} is not a whole number below 2^53`);
  return v;
}

function stringOf(o: Plain, key: string, bad: Bad, where = ''): string {
  const v = o[key];
  if (typeof v !== 'string') bad(`${where}${key} is not a string`);
  return v;
}

/** A copy, so that the state does not keep (or share) the whole encoded message. */
function bytesOf(o: Plain, key: string, bad: Bad): Buffer {
  const v = o[key];
  if (!(v instanceof Uint8Array)) bad(`${key} is not bytes`);
  return Buffer.from(v);
}

function familyOf(n: number, what: string, bad: Bad): Family {
  return familyFromWire(n) ?? bad(n === 0 ? `${what} missing` : `${what} ${n} is not an address family`);
}

/** An interface name as the kernel takes it: 1..15 bytes (IFNAMSIZ - 1), no '/', ':' or white space ('' if `empty`). */
function isInterfaceName(name: string, empty = false): boolean {
  if (name === '') return empty;
  return name.length <= 15 && name !== '.' && name !== '..' && /^[\x21-\x7e]+$/.test(name) && !/[/:]/.test(name);
}

/** What is wrong with an address, or undefined if nothing. */
function addressProblem(family: Family, ip: string, port: number, scope: string | undefined): string | undefined {
  if (family !== 'ipv4' && family !== 'ipv6') return `address family ${String(family)} unknown`;
  if (typeof ip !== 'string' || !(family === 'ipv4' ? isIPv4(ip) : isIPv6(ip))) return `ip ${JSON.stringify(ip)} is not an ${family} address`;
  // isIPv6 takes a zone (fe80::1%eth0); the saved address carries its scope apart, by interface name.
  if (ip.includes('%')) return `ip ${JSON.stringify(ip)} carries a zone`;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return `port ${port} out of range`;
  if (scope === undefined) return undefined;
  if (typeof scope !== 'string' || !isInterfaceName(scope)) return `scope ${JSON.stringify(scope)} is not an interface name`;
  if (!isLinkLocal({ family, ip, port })) return `scope ${scope} on an address that is not IPv6 link-local`;
  return undefined;
}

function addressOf(v: unknown, what: string, bad: Bad): SocketAddress {
  if (!isPlain(v)) return bad(`${what} address missing`);
  const family = familyOf(u32Of(v, 'family', bad, `${what}.`), `${what}.family`, bad);
  const ip = stringOf(v, 'ip', bad, `${what}.`);
  const port = u32Of(v, 'port', bad, `${what}.`);
  // Absent in states written before it existed, as in every other address: '' either way.
  const scopeName = v.scopeInterface === undefined ? '' : stringOf(v, 'scopeInterface', bad, `${what}.`);
  const scope = scopeName === '' ? undefined : scopeName;
  const problem = addressProblem(family, ip, port, scope);
  if (problem) bad(`${what} ${problem}`);
  return scope === undefined ? { family, ip, port } : { family, ip, port, scope };
}

function windowOf(v: unknown, bad: Bad): RepairWindow {
  if (!isPlain(v)) return bad('window is not a message');
  return {
    sndWl1: u32Of(v, 'sndWl1', bad, 'window.'),
    sndWnd: u32Of(v, 'sndWnd', bad, 'window.'),
    maxWindow: u32Of(v, 'maxWindow', bad, 'window.'),
    rcvWnd: u32Of(v, 'rcvWnd', bad, 'window.'),
    rcvWup: u32Of(v, 'rcvWup', bad, 'window.'),
  };
}

function optionsOf(v: unknown, bad: Bad): UserSocketOptions {
  if (!isPlain(v)) return bad('socket options missing');
  const w = 'options.';
  return {
    reuseAddr: boolOf(v, 'reuseAddr', bad, w),
    noDelay: boolOf(v, 'noDelay', bad, w),
    cork: boolOf(v, 'cork', bad, w),
    keepAlive: boolOf(v, 'keepAlive', bad, w),
    keepIdle: i32Of(v, 'keepIdle', bad, w),
    keepIntvl: i32Of(v, 'keepIntvl', bad, w),
    keepCnt: i32Of(v, 'keepCnt', bad, w),
    userTimeout: i32Of(v, 'userTimeout', bad, w),
    congestion: stringOf(v, 'congestion', bad, w),
    sndBuf: i32Of(v, 'sndBuf', bad, w),
    rcvBuf: i32Of(v, 'rcvBuf', bad, w),
    tos: i32Of(v, 'tos', bad, w),
    mark: i32Of(v, 'mark', bad, w),
    bufLock: i32Of(v, 'bufLock', bad, w),
    ttl: optionalI32Of(v, 'ttl', bad, w),
    priority: optionalI32Of(v, 'priority', bad, w),
    rcvLowat: i32Of(v, 'rcvLowat', bad, w),
    rcvTimeoutUs: u53Of(v, 'rcvTimeoutUs', bad, w),
    sndTimeoutUs: u53Of(v, 'sndTimeoutUs', bad, w),
    lingerSeconds: optionalI32Of(v, 'lingerSeconds', bad, w),
    reusePort: boolOf(v, 'reusePort', bad, w),
    v6only: boolOf(v, 'v6only', bad, w),
    freebind: boolOf(v, 'freebind', bad, w),
    bindDevice: bindDeviceOf(v, bad),
    notsentLowat: u32Of(v, 'notsentLowat', bad, w),
    windowClamp: u32Of(v, 'windowClamp', bad, w),
  };
}

function bindDeviceOf(v: Plain, bad: Bad): string {
  const name = stringOf(v, 'bindDevice', bad, 'options.');
  if (!isInterfaceName(name, true)) bad(`options.bindDevice ${JSON.stringify(name)} is not an interface name`);
  return name;
}
