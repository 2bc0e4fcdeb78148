// Typed shapes of the soccr.v1 messages, as grpc-js and the frame codec decode them (LOAD_OPTIONS in
// proto.ts: every scalar present, absent messages null). The shapes are generated from the protos
// (protocol/generated/, `npm run gen`, proto-loader-gen-types with the same options), so they cannot
// drift from soccr.proto; this module gives them the names the code uses.
import type { AbortRequest__Output } from './generated/soccr/v1/AbortRequest';
import type { CheckpointRequest__Output } from './generated/soccr/v1/CheckpointRequest';
import type { ConnectionEnd__Output } from './generated/soccr/v1/ConnectionEnd';
import type { ConnectionHeader__Output } from './generated/soccr/v1/ConnectionHeader';
import type { ConnectionTuple__Output } from './generated/soccr/v1/ConnectionTuple';
import type { DataTransfer__Output } from './generated/soccr/v1/DataTransfer';
import type { Features__Output } from './generated/soccr/v1/Features';
import type { Frame__Output } from './generated/soccr/v1/Frame';
import type { GetVersionResponse__Output } from './generated/soccr/v1/GetVersionResponse';
import type { GetSessionRequest__Output } from './generated/soccr/v1/GetSessionRequest';
import type { HandoffRequest__Output } from './generated/soccr/v1/HandoffRequest';
import type { HandoffResponse__Output } from './generated/soccr/v1/HandoffResponse';
import type { ListSessionsRequest__Output } from './generated/soccr/v1/ListSessionsRequest';
import type { ListSessionsResponse__Output } from './generated/soccr/v1/ListSessionsResponse';
import type { ListSocketsRequest__Output } from './generated/soccr/v1/ListSocketsRequest';
import type { ListSocketsResponse__Output } from './generated/soccr/v1/ListSocketsResponse';
import { Queue } from './generated/soccr/v1/Queue';
import type { QueueChunk__Output } from './generated/soccr/v1/QueueChunk';
import type { ReleaseRequest__Output } from './generated/soccr/v1/ReleaseRequest';
import type { RenewLeaseRequest__Output } from './generated/soccr/v1/RenewLeaseRequest';
import type { RestoreOptions__Output } from './generated/soccr/v1/RestoreOptions';
import type { RestoreResponse__Output } from './generated/soccr/v1/RestoreResponse';
import type { ResumeRequest__Output } from './generated/soccr/v1/ResumeRequest';
import type { SessionConnection__Output } from './generated/soccr/v1/SessionConnection';
import type { SessionHeader__Output } from './generated/soccr/v1/SessionHeader';
import type { SessionInfo__Output } from './generated/soccr/v1/SessionInfo';
import { SessionKind as WireSessionKind } from './generated/soccr/v1/SessionKind';
import { SessionState as WireSessionState } from './generated/soccr/v1/SessionState';
import type { SocketAddress__Output } from './generated/soccr/v1/SocketAddress';
import type { SkippedSocket__Output } from './generated/soccr/v1/SkippedSocket';
import type { SocketEntry__Output } from './generated/soccr/v1/SocketEntry';
import type { StreamEnd__Output } from './generated/soccr/v1/StreamEnd';
import { AddressFamily as WireAddressFamily } from './generated/soccr/v1/AddressFamily';

// ---- enums: short names for the proto's values ------------------------------------------------------

/** soccr.v1.Queue */
export const QueueKind = { RECV: Queue.QUEUE_RECV, SEND: Queue.QUEUE_SEND } as const;
export type QueueKind = (typeof Queue)[keyof typeof Queue];

/** soccr.v1.SessionKind */
export const SessionKind = {
  UNSPECIFIED: WireSessionKind.SESSION_KIND_UNSPECIFIED,
  SOURCE: WireSessionKind.SESSION_KIND_SOURCE,
  RESTORE: WireSessionKind.SESSION_KIND_RESTORE,
} as const;
export type SessionKind = (typeof WireSessionKind)[keyof typeof WireSessionKind];

/** soccr.v1.SessionState */
export const SessionState = {
  UNSPECIFIED: WireSessionState.SESSION_STATE_UNSPECIFIED,
  FROZEN: WireSessionState.SESSION_STATE_FROZEN,
  HELD: WireSessionState.SESSION_STATE_HELD,
  RESUMED: WireSessionState.SESSION_STATE_RESUMED,
  RELEASED: WireSessionState.SESSION_STATE_RELEASED,
  ABORTED: WireSessionState.SESSION_STATE_ABORTED,
  EXPIRED: WireSessionState.SESSION_STATE_EXPIRED,
} as const;
export type SessionState = (typeof WireSessionState)[keyof typeof WireSessionState];

/** soccr.v1.AddressFamily */
export const AddressFamily = {
  UNSPECIFIED: WireAddressFamily.ADDRESS_FAMILY_UNSPECIFIED,
  IPV4: WireAddressFamily.ADDRESS_FAMILY_IPV4,
  IPV6: WireAddressFamily.ADDRESS_FAMILY_IPV6,
} as const;
export type AddressFamily = (typeof WireAddressFamily)[keyof typeof WireAddressFamily];

/** The name of a value of one of the enums above (SOURCE, HELD, ...), or `${fallback}_${n}` for an unknown one. */
export function enumName(values: Readonly<Record<string, number>>, n: number, fallback: string): string {
  for (const [name, v] of Object.entries(values)) if (v === n) return name;
  return `${fallback}_${n}`;
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

// ---- the frame stream -------------------------------------------------------------------------------

export type AddressMsg = SocketAddress__Output;
export type DataTransferMsg = DataTransfer__Output;
export type RestoreOptionsMsg = RestoreOptions__Output;
export type ConnectionTupleMsg = ConnectionTuple__Output;
export type SessionHeaderMsg = SessionHeader__Output;
/**
 * A connection header. Its state stays a plain object until stateFromObject has checked every field
 * (protocol/state-codec.ts): decoded bytes from a peer are not trusted to have the generated shape.
 */
export type ConnectionHeaderMsg = Omit<ConnectionHeader__Output, 'state'> & { state: Record<string, unknown> };
export type QueueChunkMsg = QueueChunk__Output;
export type ConnectionEndMsg = ConnectionEnd__Output;
export type StreamEndMsg = StreamEnd__Output;

export type FrameMsg = Omit<Frame__Output, 'connection' | 'batch' | 'kind'> & {
  connection?: ConnectionHeaderMsg | null;
  batch?: { frames: FrameMsg[] } | null;
  /** which member of the oneof is set (grpc-js with oneofs: true), or UNDECODABLE (proto.ts) */
  kind?: string;
  /** kind UNDECODABLE: why the frame's bytes did not decode */
  undecodable?: string;
};

// ---- requests and responses -------------------------------------------------------------------------

export type FeaturesMsg = Features__Output;
export type GetVersionResponseMsg = GetVersionResponse__Output;
export type ListSocketsRequestMsg = ListSocketsRequest__Output;
export type SocketEntryMsg = SocketEntry__Output;
export type ListSocketsResponseMsg = ListSocketsResponse__Output;
export type CheckpointRequestMsg = CheckpointRequest__Output;
export type ResumeRequestMsg = ResumeRequest__Output;
/** Release, Abort, RenewLease and GetSession each have a request of their own, all naming one session. */
export type SessionRequestMsg = ReleaseRequest__Output | AbortRequest__Output | RenewLeaseRequest__Output | GetSessionRequest__Output;
export type SessionConnectionMsg = SessionConnection__Output;
export type SessionInfoMsg = SessionInfo__Output;
export type ListSessionsRequestMsg = ListSessionsRequest__Output;
export type ListSessionsResponseMsg = ListSessionsResponse__Output;
export type GetSessionRequestMsg = GetSessionRequest__Output;
export type RestoreResponseMsg = RestoreResponse__Output;
export type HandoffRequestMsg = HandoffRequest__Output;
export type HandoffResponseMsg = HandoffResponse__Output;
export type SkippedSocketMsg = SkippedSocket__Output;
