// Producing a session's frames: the header, then each connection's header, queue chunks and checksums.
import * as protoLoader from '@grpc/proto-loader';
import { addressToMsg } from './address';
import { MAX_CHUNK, batchFrames, decodeFrame, encodeFrame, sha256 } from './frames';
import { type FrameMsg, QueueKind, type SessionHeaderMsg } from './messages';
import { SERVICE_NAME } from './proto';
import { OPTIONS_NOT_CARRIED, STATE_VERSION, type SavedConnection, TcpState } from './saved-state';
import { stateToObject } from './state-codec';

/** One connection as the checkpoint stream carries it. */
export interface QueueBytes {
  recvQueue: Buffer;
  sendQueue: Buffer;
}

/** A connection's state, and its queue bytes where the state does not carry them. */
export interface LoadedConnection {
  /** the saved state; its queues may be empty if `queues` supplies them */
  state: SavedConnection;
  /** queue bytes read on demand, just before the connection is streamed */
  queues?: () => QueueBytes;
}

/** A connection whose state is saved already. */
export type SavedStreamedConnection = { id: string; fd: number } & LoadedConnection;

export type StreamedConnection =
  | SavedStreamedConnection
  | ({ id: string; fd: number } & {
      /** saved only when its turn in the stream comes (a frozen socket's state does not change meanwhile) */
      load: () => LoadedConnection;
    });

/**
 * The frames of a session, one connection at a time: each connection's queues are read only when its
 * turn comes and released after, so memory holds one connection's queues, not the session's.
 */
export function* sessionFrames(header: SessionHeaderMsg, conns: readonly StreamedConnection[]): Generator<FrameMsg> {
  yield { session: header };
  for (let index = 0; index < conns.length; index++) {
    const c = conns[index];
    const { state, queues } = 'load' in c ? c.load() : c;
    const q = queues ? queues() : { recvQueue: state.recvQueue, sendQueue: state.sendQueue };
    const headerState = stateToObject({ ...state, recvQueue: Buffer.alloc(0), sendQueue: Buffer.alloc(0) });
    yield { connection: { index, id: c.id, fd: c.fd, state: headerState } };
    for (const [queue, bytes] of [
      [QueueKind.RECV, q.recvQueue],
      [QueueKind.SEND, q.sendQueue],
    ] as const) {
      for (let off = 0; off < bytes.length; off += MAX_CHUNK) {
        yield { chunk: { index, queue, offset: off, data: bytes.subarray(off, Math.min(off + MAX_CHUNK, bytes.length)) } };
      }
    }
    yield { end: { index, recvSha256: sha256(q.recvQueue), sendSha256: sha256(q.sendQueue) } };
  }
  yield { streamEnd: { connectionCount: conns.length } };
}

/**
 * Runs every frame type through encoding and decoding once. protobufjs generates each type's encoder
 * and decoder on first use (milliseconds each): done at start, that cost stays out of the first freeze.
 */
export function warmFrameCodecs(pkg?: protoLoader.PackageDefinition): void {
  const sample: SavedConnection = {
    version: STATE_VERSION,
    state: TcpState.ESTABLISHED,
    socketFamily: 'ipv6',
    local: { family: 'ipv6', ip: 'fd00::1', port: 1 },
    remote: { family: 'ipv6', ip: 'fd00::2', port: 2 },
    inqSeq: 1,
    outqSeq: 1,
    inqLen: 1,
    outqLen: 1,
    unsentLen: 0,
    mssClamp: 1460,
    tcpOptions: 7,
    sndWscale: 7,
    rcvWscale: 7,
    timestamp: 1,
    window: { sndWl1: 1, sndWnd: 1, maxWindow: 1, rcvWnd: 1, rcvWup: 1 },
    recvQueue: Buffer.from([1]),
    sendQueue: Buffer.from([2]),
    options: {
      reuseAddr: false,
      noDelay: false,
      cork: false,
      keepAlive: false,
      keepIdle: 7200,
      keepIntvl: 75,
      keepCnt: 9,
      userTimeout: 0,
      congestion: 'cubic',
      sndBuf: 1,
      rcvBuf: 1,
      tos: 0,
      mark: 0,
      bufLock: 0,
      ...OPTIONS_NOT_CARRIED,
    },
  };
  const header = {
    sessionId: 'warm',
    leaseExpiresUnixMs: 0,
    connectionCount: 1,
    pid: 1,
    hostname: '',
    createdUnixMs: 0,
    tuples: [{ local: addressToMsg(sample.local), remote: addressToMsg(sample.remote) }],
    skipped: [],
  };
  const frames: FrameMsg[] = [
    { restoreOptions: { netns: '', deliverUnixPath: '', goLive: false, transparent: false, leaseMs: 0, noNetworkLock: false, dataTransfer: null } },
    ...batchFrames(sessionFrames(header, [{ id: 'w', fd: 0, state: sample }])),
  ];
  const methods = pkg ? (pkg[SERVICE_NAME] as protoLoader.ServiceDefinition | undefined) : undefined;
  for (const f of frames) {
    const bytes = encodeFrame(f);
    decodeFrame(bytes);
    methods?.Restore.requestDeserialize(bytes);
    methods?.Checkpoint.responseDeserialize(bytes);
  }
  for (const m of Object.values(methods ?? {})) {
    // Every request and response type, from an empty message.
    m.requestSerialize(m.requestDeserialize(Buffer.alloc(0)));
    m.responseSerialize(m.responseDeserialize(Buffer.alloc(0)));
  }
}
