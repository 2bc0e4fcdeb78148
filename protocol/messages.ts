// Typed shapes of the soccr.v1 messages, as grpc-js and the frame codec decode them (LOAD_OPTIONS in
// proto.ts: every scalar present, absent messages null).

export interface AddressMsg {
  family: number;
  ip: string;
  port: number;
}

export interface RestoreOptionsMsg {
  netns: string;
  deliverUnixPath: string;
  goLive: boolean;
  transparent: boolean;
  leaseMs: number;
  noNetworkLock?: boolean;
  /** frames from a direct data connection instead of the Restore stream */
  dataTransfer?: DataTransferMsg | null;
}

/** soccr.v1.DataTransfer: one direct daemon-to-daemon transfer (see the proto). */
export interface DataTransferMsg {
  /** Checkpoint only: the destination's data endpoint */
  endpoint: string;
  transferId: Buffer;
  key: Buffer;
  timeoutMs: number;
}

export interface ConnectionTupleMsg {
  local: AddressMsg | null;
  remote: AddressMsg | null;
}

export interface SessionHeaderMsg {
  sessionId: string;
  leaseExpiresUnixMs: number;
  connectionCount: number;
  pid: number;
  hostname: string;
  createdUnixMs: number;
  /** absent in streams from before the network lock */
  tuples?: ConnectionTupleMsg[];
}

export interface ConnectionHeaderMsg {
  index: number;
  id: string;
  fd: number;
  /** a plain soccr.v1.ConnectionState with empty queues */
  state: Record<string, unknown>;
}

export enum QueueKind {
  RECV = 1,
  SEND = 2,
}

export interface QueueChunkMsg {
  index: number;
  queue: QueueKind;
  offset: number;
  data: Buffer;
}

export interface ConnectionEndMsg {
  index: number;
  recvSha256: Buffer;
  sendSha256: Buffer;
}

export interface StreamEndMsg {
  connectionCount: number;
}

export interface FrameMsg {
  restoreOptions?: RestoreOptionsMsg | null;
  session?: SessionHeaderMsg | null;
  connection?: ConnectionHeaderMsg | null;
  chunk?: QueueChunkMsg | null;
  end?: ConnectionEndMsg | null;
  streamEnd?: StreamEndMsg | null;
  batch?: { frames: FrameMsg[] } | null;
  /** which member of the oneof is set (grpc-js with oneofs: true), or UNDECODABLE */
  kind?: string;
  /** kind UNDECODABLE: why the frame's bytes did not decode */
  undecodable?: string;
}



/** soccr.v1.SessionKind */
export enum SessionKind {
  UNSPECIFIED = 0,
  SOURCE = 1,
  RESTORE = 2,
}

/** soccr.v1.SessionState */
export enum SessionState {
  UNSPECIFIED = 0,
  FROZEN = 1,
  HELD = 2,
  RESUMED = 3,
  RELEASED = 4,
  ABORTED = 5,
  EXPIRED = 6,
}

/** soccr.v1.AddressFamily */
export enum AddressFamily {
  UNSPECIFIED = 0,
  IPV4 = 1,
  IPV6 = 2,
}

export interface FeaturesMsg {
  tcpRepair: boolean;
  repairWindow: boolean;
  pidfdGetfd: boolean;
  bufLock: boolean;
  rawSocket: boolean;
  networkLock: boolean;
  nativeBatch: boolean;
}

export interface GetVersionResponseMsg {
  version: string;
  kernelRelease: string;
  streamFormat: number;
  features: FeaturesMsg | null;
  /** where the daemon takes direct transfers, "host:port"; empty when it does not */
  dataEndpoint: string;
}

export interface ListSocketsRequestMsg {
  pid: number;
}

export interface SocketEntryMsg {
  fd: number;
  inode: number;
  family: AddressFamily;
  local: AddressMsg | null;
  remote: AddressMsg | null;
  /** soccr.v1.TcpState (tcpStateName() names it) */
  state: number;
  sendQueue: number;
  recvQueue: number;
}

export interface ListSocketsResponseMsg {
  sockets: SocketEntryMsg[];
}

export interface CheckpointRequestMsg {
  pid: number;
  fds: number[];
  all: boolean;
  options: { leaseMs: number; noNetworkLock: boolean; stopOwner: boolean } | null;
  /** send the frames to another daemon's data endpoint instead of the stream */
  dataTransfer?: DataTransferMsg | null;
}

export interface ResumeRequestMsg {
  sessionId: string;
  deliverUnixPath: string;
}

export interface SessionRequestMsg {
  sessionId: string;
}

/** The soccr.v1.SessionKind and SessionState of the daemon's session kinds and states. */
export const SESSION_KIND = { source: SessionKind.SOURCE, restore: SessionKind.RESTORE } as const;
export const SESSION_STATE = {
  FROZEN: SessionState.FROZEN,
  HELD: SessionState.HELD,
  RESUMED: SessionState.RESUMED,
  RELEASED: SessionState.RELEASED,
  ABORTED: SessionState.ABORTED,
  EXPIRED: SessionState.EXPIRED,
} as const;

export interface SessionConnectionMsg {
  id: string;
  fd: number;
  local: AddressMsg | null;
  remote: AddressMsg | null;
  state: number;
  recvQueueLen: number;
  sendQueueLen: number;
  delivered: boolean;
}

export interface SessionInfoMsg {
  sessionId: string;
  kind: SessionKind;
  state: SessionState;
  pid: number;
  createdUnixMs: number;
  leaseExpiresUnixMs: number;
  connections: SessionConnectionMsg[];
  netns: string;
  deliverUnixPath: string;
  reason: string;
}

export interface ListSessionsResponseMsg {
  sessions: SessionInfoMsg[];
}

export interface RestoreResponseMsg {
  session: SessionInfoMsg | null;
}
