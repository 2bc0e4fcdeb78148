// The wire form of a saved state (protocol/state-codec.ts): exact round trips, deterministic bytes, and refusal of
// anything that is not a well-formed state of a known version. Pure computation: needs no privileges.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { SoccrError } from '../protocol/errors';
import { OPTIONS_NOT_CARRIED, STATE_VERSION, SavedConnection, TcpState } from '../protocol/saved-state';
import { protoRoot } from '../protocol/proto';
import { decodeState, encodeState } from '../protocol/state-codec';
import { savedConnection } from './support/states';
import { FrameMsg } from '../protocol/messages';
import { addressToMsg } from '../protocol/address';
import { batchFrames, encodeFrame, frameKind, unpackFrames } from '../protocol/frames';
import { SERVICE_NAME, loadPackageDefinition } from '../protocol/proto';
import { sessionFrames } from '../protocol/session-frames';
import type { ServiceDefinition } from '@grpc/proto-loader';

const MiB = 1024 * 1024;

/** A state with `recv`/`send` random bytes in its queues, `unsent` of the send queue never sent. */
function withQueues(s: SavedConnection, recv: number, send: number, unsent = 0): SavedConnection {
  return { ...s, recvQueue: randomBytes(recv), sendQueue: randomBytes(send), inqLen: recv, outqLen: send, unsentLen: unsent };
}

function isInvalidState(err: unknown): boolean {
  assert.ok(err instanceof SoccrError, `expected a SoccrError, got ${String(err)}`);
  assert.equal(err.kind, 'INVALID_STATE');
  return true;
}

function assertInvalid(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    isInvalidState(err);
    if (message) assert.match((err as Error).message, message);
    return true;
  });
}

/** Deterministic pseudo-random bytes (xorshift32), so garbage cases are the same on every run. */
function garbage(seed: number, len: number): Buffer {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Encodes an arbitrary ConnectionState-shaped object with protobufjs directly, bypassing encodeState. */
const ConnectionState = protoRoot.lookupType('soccr.v1.ConnectionState');
function rawEncode(obj: Record<string, unknown>): Buffer {
  return Buffer.from(ConnectionState.encode(ConnectionState.fromObject(obj)).finish());
}
function rawObject(s: SavedConnection): Record<string, unknown> {
  return ConnectionState.toObject(ConnectionState.decode(encodeState(s)), { longs: Number, enums: Number });
}

function roundTrip(s: SavedConnection): SavedConnection {
  const decoded = decodeState(encodeState(s));
  assert.deepStrictEqual(decoded, s);
  return decoded;
}

describe('wire: saved state encoding', () => {
  describe('round trip', () => {
    it('IPv4 with a repair window', () => {
      roundTrip(withQueues(savedConnection(), 1000, 3000, 1200));
    });

    it('IPv4 without a repair window', () => {
      roundTrip(withQueues(savedConnection({ window: undefined }), 17, 0));
    });

    it('a state whose window key is omitted decodes with window undefined', () => {
      const s = savedConnection();
      delete s.window;
      const d = decodeState(encodeState(s));
      assert.equal(d.window, undefined);
      assert.deepStrictEqual(d, { ...s, window: undefined });
    });

    it('IPv6 with a repair window', () => {
      roundTrip(
        withQueues(
          savedConnection({
            socketFamily: 'ipv6',
            local: { family: 'ipv6', ip: '2001:db8::1', port: 1 },
            remote: { family: 'ipv6', ip: 'fe80::1:2:3:4', port: 65535 },
            options: { ...savedConnection().options, tos: 0xb8 },
          }),
          4096,
          8192,
          8192,
        ),
      );
    });

    it('IPv6 without a repair window', () => {
      roundTrip(
        savedConnection({
          socketFamily: 'ipv6',
          local: { family: 'ipv6', ip: '::1', port: 5000 },
          remote: { family: 'ipv6', ip: '::1', port: 5001 },
          window: undefined,
        }),
      );
    });

    it('IPv4-mapped addresses on an IPv6 socket, with and without a window', () => {
      const mapped = savedConnection({
        socketFamily: 'ipv6',
        local: { family: 'ipv6', ip: '::ffff:10.0.0.1', port: 8080 },
        remote: { family: 'ipv6', ip: '::ffff:172.16.254.9', port: 50000 },
      });
      roundTrip(withQueues(mapped, 10, 20, 5));
      roundTrip(withQueues({ ...mapped, window: undefined }, 0, 7, 0));
    });

    it('multi-MiB queues of random bytes', function () {
      this.timeout(30000);
      const s = withQueues(savedConnection(), 5 * MiB + 3, 3 * MiB + 1, MiB);
      const d = roundTrip(s);
      assert.ok(d.recvQueue.equals(s.recvQueue));
      assert.ok(d.sendQueue.equals(s.sendQueue));
    });

    it('every TCP state and the extremes of every field', () => {
      for (const state of Object.values(TcpState).filter((v): v is TcpState => typeof v === 'number')) {
        roundTrip(savedConnection({ state }));
      }
      const zeros = savedConnection({
        inqSeq: 0,
        outqSeq: 0,
        mssClamp: 0,
        tcpOptions: 0,
        sndWscale: 0,
        rcvWscale: 0,
        timestamp: 0,
        window: { sndWl1: 0, sndWnd: 0, maxWindow: 0, rcvWnd: 0, rcvWup: 0 },
        options: {
          reuseAddr: false,
          noDelay: false,
          cork: false,
          keepAlive: false,
          keepIdle: 0,
          keepIntvl: 0,
          keepCnt: 0,
          userTimeout: 0,
          congestion: '',
          sndBuf: 0,
          rcvBuf: 0,
          tos: 0,
          mark: 0,
          bufLock: 0,
          // Present zeros, which mean something (TTL 0 is refused by the kernel but must survive the codec; linger 0 resets on close).
          ...OPTIONS_NOT_CARRIED,
          ttl: 0,
          priority: 0,
          lingerSeconds: 0,
        },
      });
      roundTrip(zeros);
      const u32 = 0xffffffff;
      roundTrip(
        savedConnection({
          inqSeq: u32,
          outqSeq: u32,
          mssClamp: 65535,
          timestamp: u32,
          window: { sndWl1: u32, sndWnd: u32, maxWindow: u32, rcvWnd: u32, rcvWup: u32 },
          local: { family: 'ipv4', ip: '0.0.0.0', port: 0 },
          remote: { family: 'ipv4', ip: '255.255.255.255', port: 65535 },
          options: {
            ...savedConnection().options,
            keepIdle: 0x7fffffff,
            keepIntvl: -0x80000000,
            userTimeout: -1,
            sndBuf: 0x7fffffff,
            congestion: 'bbr_longname_15',
            // SO_MARK above 2^31 - 1, as getsockopt hands it to us: negative.
            mark: -2,
          },
        }),
      );
    });

    it('decodes to numbers and to Buffers of their own', () => {
      const s = withQueues(savedConnection(), 300, 200, 0);
      const enc = encodeState(s);
      const d = decodeState(enc);
      const numeric: Array<[string, unknown]> = [
        ...Object.entries(d).filter(([k]) => !['socketFamily', 'local', 'remote', 'window', 'recvQueue', 'sendQueue', 'options'].includes(k)),
        ['local.port', d.local.port],
        ['remote.port', d.remote.port],
        ...Object.entries(d.window ?? {}),
        ...Object.entries(d.options).filter(
          ([k]) => !['reuseAddr', 'noDelay', 'cork', 'keepAlive', 'congestion', 'reusePort', 'v6only', 'freebind', 'bindDevice'].includes(k),
        ),
      ];
      assert.equal(numeric.length, 12 + 2 + 5 + 17);
      for (const [k, v] of numeric) assert.equal(typeof v, 'number', `${k} is ${typeof v}`);
      assert.ok(Buffer.isBuffer(d.recvQueue));
      assert.ok(Buffer.isBuffer(d.sendQueue));
      // The queues do not alias the encoded message.
      const before = Buffer.from(d.recvQueue);
      enc.fill(0);
      assert.ok(d.recvQueue.equals(before));
      assert.ok(d.recvQueue.equals(s.recvQueue));
    });

    it('encodeState returns a Buffer', () => {
      assert.ok(Buffer.isBuffer(encodeState(savedConnection())));
    });
  });

  describe('determinism', () => {
    it('the same state always encodes to the same bytes', () => {
      const s = withQueues(savedConnection(), 2000, 1000, 10);
      const a = encodeState(s);
      const b = encodeState(s);
      assert.ok(a.equals(b));
      // A structurally equal copy, built in another key order with fresh Buffers.
      const copy: SavedConnection = {
        options: { ...s.options },
        sendQueue: Buffer.from(s.sendQueue),
        recvQueue: Buffer.from(s.recvQueue),
        window: s.window
          ? { rcvWup: s.window.rcvWup, rcvWnd: s.window.rcvWnd, maxWindow: s.window.maxWindow, sndWnd: s.window.sndWnd, sndWl1: s.window.sndWl1 }
          : undefined,
        timestamp: s.timestamp,
        rcvWscale: s.rcvWscale,
        sndWscale: s.sndWscale,
        tcpOptions: s.tcpOptions,
        mssClamp: s.mssClamp,
        unsentLen: s.unsentLen,
        outqLen: s.outqLen,
        inqLen: s.inqLen,
        outqSeq: s.outqSeq,
        inqSeq: s.inqSeq,
        remote: { port: s.remote.port, ip: s.remote.ip, family: s.remote.family },
        local: { port: s.local.port, ip: s.local.ip, family: s.local.family },
        socketFamily: s.socketFamily,
        state: s.state,
        version: s.version,
      };
      assert.ok(encodeState(copy).equals(a));
      // And decoding then re-encoding reproduces the bytes.
      assert.ok(encodeState(decodeState(a)).equals(a));
    });

    it('an absent window and an undefined window encode alike', () => {
      const s = savedConnection({ window: undefined });
      const t = savedConnection();
      delete t.window;
      assert.ok(encodeState(s).equals(encodeState(t)));
    });
  });

  describe('refusals', () => {
    it('garbage bytes', () => {
      const cases: Buffer[] = [
        Buffer.from('this is not a protobuf message'),
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Buffer.from([0x0f]),
        Buffer.from([0x08]),
        Buffer.from(JSON.stringify(savedConnection())),
        Buffer.alloc(64, 0),
        Buffer.alloc(0),
      ];
      for (let seed = 1; seed <= 500; seed++) cases.push(garbage(seed * 2654435761, 1 + (seed % 97) * 3));
      for (const g of cases) assertInvalid(() => decodeState(g));
    });

    it('truncated bytes, at every length', () => {
      const small = encodeState(savedConnection());
      for (let n = 0; n < small.length; n++) assertInvalid(() => decodeState(small.subarray(0, n)));
      const mapped = encodeState(
        withQueues(
          savedConnection({
            socketFamily: 'ipv6',
            local: { family: 'ipv6', ip: '::ffff:10.0.0.1', port: 8080 },
            remote: { family: 'ipv6', ip: '::ffff:10.0.0.2', port: 8081 },
            window: undefined,
          }),
          100,
          50,
        ),
      );
      for (let n = 0; n < mapped.length; n++) assertInvalid(() => decodeState(mapped.subarray(0, n)));
    });

    it('truncated bytes of a multi-MiB state', function () {
      this.timeout(30000);
      const big = encodeState(withQueues(savedConnection(), 2 * MiB, 2 * MiB));
      for (const n of [1, 100, MiB, 2 * MiB + 5, 3 * MiB, big.length - 200, big.length - 1]) {
        assertInvalid(() => decodeState(big.subarray(0, n)), /corrupt or truncated|missing/);
      }
    });

    it('an unknown or absent version', () => {
      for (const version of [0, STATE_VERSION + 1, 2, 99, 0xffffffff]) {
        if (version === STATE_VERSION) continue;
        assertInvalid(() => decodeState(encodeState(savedConnection({ version }))), /version/);
      }
    });

    it('missing addresses or options', () => {
      for (const field of ['local', 'remote', 'options']) {
        const { [field]: _removed, ...obj } = rawObject(savedConnection());
        assertInvalid(() => decodeState(rawEncode(obj)), new RegExp(`${field}.*missing|missing.*options`));
      }
      // An address present but empty (no family, no ip).
      const obj = rawObject(savedConnection());
      obj.local = {};
      assertInvalid(() => decodeState(rawEncode(obj)), /local/);
    });

    it('out-of-range enums and malformed addresses', () => {
      const cases: Array<(o: Record<string, unknown>) => void> = [
        (o) => (o.state = 0),
        (o) => (o.state = 12),
        (o) => (o.socketFamily = 0),
        (o) => (o.socketFamily = 3),
        (o) => (o.local = { family: 1, ip: '10.0.0.1', port: 70000 }),
        (o) => (o.local = { family: 1, ip: '::1', port: 80 }),
        (o) => (o.remote = { family: 2, ip: '10.0.0.1', port: 80 }),
        (o) => (o.remote = { family: 1, ip: 'example.com', port: 80 }),
        (o) => (o.remote = { family: 7, ip: '10.0.0.1', port: 80 }),
      ];
      for (const mutate of cases) {
        const obj = rawObject(savedConnection());
        mutate(obj);
        assertInvalid(() => decodeState(rawEncode(obj)));
      }
    });

    it('a state written before SocketOptions fields 15-26 and SocketAddress.scope_interface decodes with each of them not carried', () => {
      // encodeState(savedConnection()) as the encoder of commit 55326ef wrote it, and the same with IPv6 link-local addresses.
      const oldV4 = Buffer.from(
        'CAEQARgBIhAIARIIMTAuMS4yLjMYytECKhQIARINMTkyLjE2OC4yMDAuNxi7AzDw////DziBgICACEAASABQAFioC2AHaAdwCXjv/bb1DYIBFQj/////DxCA//8DGICAgAIgACi5YIoBAJIBAJoBKQgBEAEYACABKKA4MEs4CUCw6gFKBWN1YmljUICoBViAgAhgEGi0JHAB',
        'base64',
      );
      const oldLinkLocal = Buffer.from(
        'CAEQARgCIg4IAhIHZmU4MDo6MRjYNioPCAISB2ZlODA6OjIYwLgCMPD///8POIGAgIAIQABIAFAAWKgLYAdoB3AJeO/9tvUNggEVCP////8PEID//wMYgICAAiAAKLlgigEAkgEAmgEpCAEQARgAIAEooDgwSzgJQLDqAUoFY3ViaWNQgKgFWICACGAQaLQkcAE=',
        'base64',
      );
      const before = { ...savedConnection().options, ...OPTIONS_NOT_CARRIED };
      assert.deepEqual(decodeState(oldV4), savedConnection({ options: before }));
      const d = decodeState(oldLinkLocal);
      assert.deepEqual(d.options, before);
      assert.deepEqual(
        [d.local, d.remote],
        [
          { family: 'ipv6', ip: 'fe80::1', port: 7000 },
          { family: 'ipv6', ip: 'fe80::2', port: 40000 },
        ],
      );
    });

    it('an IPv6 link-local address keeps its scope; a scope anywhere else, or not an interface name, is refused', () => {
      const ll = savedConnection({
        socketFamily: 'ipv6',
        local: { family: 'ipv6', ip: 'fe80::1', port: 7000, scope: 'eth1' },
        remote: { family: 'ipv6', ip: 'febf::2', port: 40000, scope: 'eth1' },
      });
      assert.deepEqual(decodeState(encodeState(ll)), ll);
      for (const bad of [
        savedConnection({ local: { family: 'ipv4', ip: '10.1.2.3', port: 1, scope: 'eth1' } }),
        savedConnection({ socketFamily: 'ipv6', local: { family: 'ipv6', ip: 'fec0::1', port: 1, scope: 'eth1' } }),
        savedConnection({ socketFamily: 'ipv6', local: { family: 'ipv6', ip: 'fe80::1', port: 1, scope: 'a/b' } }),
        savedConnection({ socketFamily: 'ipv6', local: { family: 'ipv6', ip: 'fe80::1', port: 1, scope: 'sixteen-bytes-xx' } }),
        savedConnection({ options: { ...savedConnection().options, bindDevice: 'has space' } }),
      ]) {
        assertInvalid(() => encodeState(bad), /cannot encode/);
      }
    });

    it('encodeState refuses values the format cannot carry', () => {
      const cases: SavedConnection[] = [
        savedConnection({ inqSeq: -1 }),
        savedConnection({ outqSeq: 0x100000000 }),
        savedConnection({ timestamp: 1.5 }),
        savedConnection({ inqLen: Number.NaN }),
        savedConnection({ window: { sndWl1: 0, sndWnd: -5, maxWindow: 0, rcvWnd: 0, rcvWup: 0 } }),
        savedConnection({ options: { ...savedConnection().options, mark: 0x80000000 } }),
        savedConnection({ options: { ...savedConnection().options, rcvTimeoutUs: 2 ** 53 } }),
        savedConnection({ options: { ...savedConnection().options, lingerSeconds: 0.5 } }),
        savedConnection({ local: { family: 'ipv4', ip: '10.0.0.300', port: 1 } }),
        savedConnection({ remote: { family: 'ipv4', ip: '10.0.0.1', port: 65536 } }),
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- 0 is no TCP state: the invalid value under test
        savedConnection({ state: 0 as TcpState }),
      ];
      for (const s of cases) assertInvalid(() => encodeState(s), /cannot encode/);
    });
  });
});

describe('checkpoint frames: the daemon encodes them as proto-loader would', () => {
  it('encodeFrame gives the same bytes as the generic serializer, for every kind of frame a session streams', () => {
    const serialize = (loadPackageDefinition()[SERVICE_NAME] as ServiceDefinition).Checkpoint.responseSerialize;
    const v6 = savedConnection({
      socketFamily: 'ipv6',
      local: { family: 'ipv6', ip: 'fd00::1', port: 443 },
      remote: { family: 'ipv6', ip: 'fd00::2', port: 50000 },
      window: undefined,
    });
    const conns = [withQueues(savedConnection(), 3 * MiB, 1500, 700), withQueues(v6, 0, 0), savedConnection({ state: TcpState.FIN_WAIT2 })].map((state, i) => ({
      id: `7:${i}`,
      fd: 10 + i,
      state,
    }));
    const header = {
      sessionId: 'src-1',
      leaseExpiresUnixMs: 1_800_000_000_123,
      connectionCount: 3,
      pid: 7,
      hostname: 'a',
      createdUnixMs: 1_700_000_000_456,
      tuples: conns.map((c) => ({ local: addressToMsg(c.state.local), remote: addressToMsg(c.state.remote) })),
      skipped: [],
    };
    const kinds = new Set<string>();
    for (const f of [...sessionFrames(header, conns), ...batchFrames(sessionFrames(header, conns))]) {
      kinds.add(frameKind(f));
      assert.ok(encodeFrame(f).equals(serialize(f)), `${frameKind(f)} frame encodes differently`);
    }
    assert.deepEqual([...kinds].sort(), ['batch', 'chunk', 'connection', 'end', 'session', 'streamEnd']);
  });

  it('batches: the header alone and first, large chunks alone, the rest packed in order; unpacked they are the stream', () => {
    const conns = Array.from({ length: 40 }, (_, i) => ({ id: `7:${i}`, fd: i, state: withQueues(savedConnection(), i === 5 ? 64 * 1024 : 100, 200) }));
    const header = {
      sessionId: 'src-1',
      leaseExpiresUnixMs: 1,
      connectionCount: conns.length,
      pid: 7,
      hostname: 'a',
      createdUnixMs: 1,
      tuples: [],
      skipped: [],
    };
    const plain = [...sessionFrames(header, conns)];
    const packed = [...batchFrames(plain)];
    assert.equal(frameKind(packed[0]), 'session', 'the header goes first, alone');
    assert.ok(
      packed.some((f) => frameKind(f) === 'chunk' && (f.chunk?.data.length ?? 0) === 64 * 1024),
      'a large chunk goes alone',
    );
    assert.ok(packed.length < plain.length / 10, `${packed.length} messages for ${plain.length} frames`);
    for (const f of packed) if (f.batch) assert.ok(f.batch.frames.length <= 64);
    assert.deepEqual(packed.flatMap(unpackFrames), plain);
  });

  it('a malformed batch is refused: nested, holding restore options, empty', () => {
    const end = { end: { index: 0, recvSha256: Buffer.alloc(32), sendSha256: Buffer.alloc(32) } };
    const cases: FrameMsg[] = [
      { batch: { frames: [end, { batch: { frames: [end] } }] } },
      {
        batch: {
          frames: [
            { restoreOptions: { netns: '', deliverUnixPath: '', goLive: false, transparent: false, leaseMs: 0, noNetworkLock: false, dataTransfer: null } },
          ],
        },
      },
      { batch: { frames: [] } },
      { batch: { frames: [end, {}] } },
    ];
    for (const f of cases) {
      assert.throws(
        () => unpackFrames(f),
        (err: unknown) => err instanceof SoccrError && err.kind === 'BAD_REQUEST' && err.message.includes('frame batch'),
      );
    }
    assert.deepEqual(unpackFrames(end), [end]);
  });
});
