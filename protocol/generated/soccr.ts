import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AbortRequest as _soccr_v1_AbortRequest, AbortRequest__Output as _soccr_v1_AbortRequest__Output } from './soccr/v1/AbortRequest';
import type { CheckpointOptions as _soccr_v1_CheckpointOptions, CheckpointOptions__Output as _soccr_v1_CheckpointOptions__Output } from './soccr/v1/CheckpointOptions';
import type { CheckpointRequest as _soccr_v1_CheckpointRequest, CheckpointRequest__Output as _soccr_v1_CheckpointRequest__Output } from './soccr/v1/CheckpointRequest';
import type { ConnectionEnd as _soccr_v1_ConnectionEnd, ConnectionEnd__Output as _soccr_v1_ConnectionEnd__Output } from './soccr/v1/ConnectionEnd';
import type { ConnectionHeader as _soccr_v1_ConnectionHeader, ConnectionHeader__Output as _soccr_v1_ConnectionHeader__Output } from './soccr/v1/ConnectionHeader';
import type { ConnectionState as _soccr_v1_ConnectionState, ConnectionState__Output as _soccr_v1_ConnectionState__Output } from './soccr/v1/ConnectionState';
import type { ConnectionTuple as _soccr_v1_ConnectionTuple, ConnectionTuple__Output as _soccr_v1_ConnectionTuple__Output } from './soccr/v1/ConnectionTuple';
import type { DataTransfer as _soccr_v1_DataTransfer, DataTransfer__Output as _soccr_v1_DataTransfer__Output } from './soccr/v1/DataTransfer';
import type { Features as _soccr_v1_Features, Features__Output as _soccr_v1_Features__Output } from './soccr/v1/Features';
import type { Frame as _soccr_v1_Frame, Frame__Output as _soccr_v1_Frame__Output } from './soccr/v1/Frame';
import type { FrameBatch as _soccr_v1_FrameBatch, FrameBatch__Output as _soccr_v1_FrameBatch__Output } from './soccr/v1/FrameBatch';
import type { GetSessionRequest as _soccr_v1_GetSessionRequest, GetSessionRequest__Output as _soccr_v1_GetSessionRequest__Output } from './soccr/v1/GetSessionRequest';
import type { GetVersionRequest as _soccr_v1_GetVersionRequest, GetVersionRequest__Output as _soccr_v1_GetVersionRequest__Output } from './soccr/v1/GetVersionRequest';
import type { GetVersionResponse as _soccr_v1_GetVersionResponse, GetVersionResponse__Output as _soccr_v1_GetVersionResponse__Output } from './soccr/v1/GetVersionResponse';
import type { HandedSocket as _soccr_v1_HandedSocket, HandedSocket__Output as _soccr_v1_HandedSocket__Output } from './soccr/v1/HandedSocket';
import type { HandoffRequest as _soccr_v1_HandoffRequest, HandoffRequest__Output as _soccr_v1_HandoffRequest__Output } from './soccr/v1/HandoffRequest';
import type { HandoffResponse as _soccr_v1_HandoffResponse, HandoffResponse__Output as _soccr_v1_HandoffResponse__Output } from './soccr/v1/HandoffResponse';
import type { ListSessionsRequest as _soccr_v1_ListSessionsRequest, ListSessionsRequest__Output as _soccr_v1_ListSessionsRequest__Output } from './soccr/v1/ListSessionsRequest';
import type { ListSessionsResponse as _soccr_v1_ListSessionsResponse, ListSessionsResponse__Output as _soccr_v1_ListSessionsResponse__Output } from './soccr/v1/ListSessionsResponse';
import type { ListSocketsRequest as _soccr_v1_ListSocketsRequest, ListSocketsRequest__Output as _soccr_v1_ListSocketsRequest__Output } from './soccr/v1/ListSocketsRequest';
import type { ListSocketsResponse as _soccr_v1_ListSocketsResponse, ListSocketsResponse__Output as _soccr_v1_ListSocketsResponse__Output } from './soccr/v1/ListSocketsResponse';
import type { QueueChunk as _soccr_v1_QueueChunk, QueueChunk__Output as _soccr_v1_QueueChunk__Output } from './soccr/v1/QueueChunk';
import type { ReleaseRequest as _soccr_v1_ReleaseRequest, ReleaseRequest__Output as _soccr_v1_ReleaseRequest__Output } from './soccr/v1/ReleaseRequest';
import type { RenewLeaseRequest as _soccr_v1_RenewLeaseRequest, RenewLeaseRequest__Output as _soccr_v1_RenewLeaseRequest__Output } from './soccr/v1/RenewLeaseRequest';
import type { RepairWindow as _soccr_v1_RepairWindow, RepairWindow__Output as _soccr_v1_RepairWindow__Output } from './soccr/v1/RepairWindow';
import type { RestoreOptions as _soccr_v1_RestoreOptions, RestoreOptions__Output as _soccr_v1_RestoreOptions__Output } from './soccr/v1/RestoreOptions';
import type { RestoreResponse as _soccr_v1_RestoreResponse, RestoreResponse__Output as _soccr_v1_RestoreResponse__Output } from './soccr/v1/RestoreResponse';
import type { ResumeRequest as _soccr_v1_ResumeRequest, ResumeRequest__Output as _soccr_v1_ResumeRequest__Output } from './soccr/v1/ResumeRequest';
import type { SessionConnection as _soccr_v1_SessionConnection, SessionConnection__Output as _soccr_v1_SessionConnection__Output } from './soccr/v1/SessionConnection';
import type { SessionHeader as _soccr_v1_SessionHeader, SessionHeader__Output as _soccr_v1_SessionHeader__Output } from './soccr/v1/SessionHeader';
import type { SessionInfo as _soccr_v1_SessionInfo, SessionInfo__Output as _soccr_v1_SessionInfo__Output } from './soccr/v1/SessionInfo';
import type { SkippedSocket as _soccr_v1_SkippedSocket, SkippedSocket__Output as _soccr_v1_SkippedSocket__Output } from './soccr/v1/SkippedSocket';
import type { SocketAddress as _soccr_v1_SocketAddress, SocketAddress__Output as _soccr_v1_SocketAddress__Output } from './soccr/v1/SocketAddress';
import type { SocketEntry as _soccr_v1_SocketEntry, SocketEntry__Output as _soccr_v1_SocketEntry__Output } from './soccr/v1/SocketEntry';
import type { SocketOptions as _soccr_v1_SocketOptions, SocketOptions__Output as _soccr_v1_SocketOptions__Output } from './soccr/v1/SocketOptions';
import type { SocketRepairServiceClient as _soccr_v1_SocketRepairServiceClient, SocketRepairServiceDefinition as _soccr_v1_SocketRepairServiceDefinition } from './soccr/v1/SocketRepairService';
import type { StreamEnd as _soccr_v1_StreamEnd, StreamEnd__Output as _soccr_v1_StreamEnd__Output } from './soccr/v1/StreamEnd';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  soccr: {
    v1: {
      AbortRequest: MessageTypeDefinition<_soccr_v1_AbortRequest, _soccr_v1_AbortRequest__Output>
      AddressFamily: EnumTypeDefinition
      CheckpointOptions: MessageTypeDefinition<_soccr_v1_CheckpointOptions, _soccr_v1_CheckpointOptions__Output>
      CheckpointRequest: MessageTypeDefinition<_soccr_v1_CheckpointRequest, _soccr_v1_CheckpointRequest__Output>
      ConnectionEnd: MessageTypeDefinition<_soccr_v1_ConnectionEnd, _soccr_v1_ConnectionEnd__Output>
      ConnectionHeader: MessageTypeDefinition<_soccr_v1_ConnectionHeader, _soccr_v1_ConnectionHeader__Output>
      ConnectionState: MessageTypeDefinition<_soccr_v1_ConnectionState, _soccr_v1_ConnectionState__Output>
      ConnectionTuple: MessageTypeDefinition<_soccr_v1_ConnectionTuple, _soccr_v1_ConnectionTuple__Output>
      DataTransfer: MessageTypeDefinition<_soccr_v1_DataTransfer, _soccr_v1_DataTransfer__Output>
      Features: MessageTypeDefinition<_soccr_v1_Features, _soccr_v1_Features__Output>
      Frame: MessageTypeDefinition<_soccr_v1_Frame, _soccr_v1_Frame__Output>
      FrameBatch: MessageTypeDefinition<_soccr_v1_FrameBatch, _soccr_v1_FrameBatch__Output>
      GetSessionRequest: MessageTypeDefinition<_soccr_v1_GetSessionRequest, _soccr_v1_GetSessionRequest__Output>
      GetVersionRequest: MessageTypeDefinition<_soccr_v1_GetVersionRequest, _soccr_v1_GetVersionRequest__Output>
      GetVersionResponse: MessageTypeDefinition<_soccr_v1_GetVersionResponse, _soccr_v1_GetVersionResponse__Output>
      HandedSocket: MessageTypeDefinition<_soccr_v1_HandedSocket, _soccr_v1_HandedSocket__Output>
      HandoffRequest: MessageTypeDefinition<_soccr_v1_HandoffRequest, _soccr_v1_HandoffRequest__Output>
      HandoffResponse: MessageTypeDefinition<_soccr_v1_HandoffResponse, _soccr_v1_HandoffResponse__Output>
      ListSessionsRequest: MessageTypeDefinition<_soccr_v1_ListSessionsRequest, _soccr_v1_ListSessionsRequest__Output>
      ListSessionsResponse: MessageTypeDefinition<_soccr_v1_ListSessionsResponse, _soccr_v1_ListSessionsResponse__Output>
      ListSocketsRequest: MessageTypeDefinition<_soccr_v1_ListSocketsRequest, _soccr_v1_ListSocketsRequest__Output>
      ListSocketsResponse: MessageTypeDefinition<_soccr_v1_ListSocketsResponse, _soccr_v1_ListSocketsResponse__Output>
      Queue: EnumTypeDefinition
      QueueChunk: MessageTypeDefinition<_soccr_v1_QueueChunk, _soccr_v1_QueueChunk__Output>
      ReleaseRequest: MessageTypeDefinition<_soccr_v1_ReleaseRequest, _soccr_v1_ReleaseRequest__Output>
      RenewLeaseRequest: MessageTypeDefinition<_soccr_v1_RenewLeaseRequest, _soccr_v1_RenewLeaseRequest__Output>
      RepairWindow: MessageTypeDefinition<_soccr_v1_RepairWindow, _soccr_v1_RepairWindow__Output>
      RestoreOptions: MessageTypeDefinition<_soccr_v1_RestoreOptions, _soccr_v1_RestoreOptions__Output>
      RestoreResponse: MessageTypeDefinition<_soccr_v1_RestoreResponse, _soccr_v1_RestoreResponse__Output>
      ResumeRequest: MessageTypeDefinition<_soccr_v1_ResumeRequest, _soccr_v1_ResumeRequest__Output>
      SessionConnection: MessageTypeDefinition<_soccr_v1_SessionConnection, _soccr_v1_SessionConnection__Output>
      SessionHeader: MessageTypeDefinition<_soccr_v1_SessionHeader, _soccr_v1_SessionHeader__Output>
      SessionInfo: MessageTypeDefinition<_soccr_v1_SessionInfo, _soccr_v1_SessionInfo__Output>
      SessionKind: EnumTypeDefinition
      SessionState: EnumTypeDefinition
      SkippedSocket: MessageTypeDefinition<_soccr_v1_SkippedSocket, _soccr_v1_SkippedSocket__Output>
      SocketAddress: MessageTypeDefinition<_soccr_v1_SocketAddress, _soccr_v1_SocketAddress__Output>
      SocketEntry: MessageTypeDefinition<_soccr_v1_SocketEntry, _soccr_v1_SocketEntry__Output>
      SocketOptions: MessageTypeDefinition<_soccr_v1_SocketOptions, _soccr_v1_SocketOptions__Output>
      SocketRepairService: SubtypeConstructor<typeof grpc.Client, _soccr_v1_SocketRepairServiceClient> & { service: _soccr_v1_SocketRepairServiceDefinition }
      StreamEnd: MessageTypeDefinition<_soccr_v1_StreamEnd, _soccr_v1_StreamEnd__Output>
      TcpState: EnumTypeDefinition
    }
  }
}

