// Original file: protos/soccr/v1/soccr.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AbortRequest as _soccr_v1_AbortRequest, AbortRequest__Output as _soccr_v1_AbortRequest__Output } from '../../soccr/v1/AbortRequest';
import type { CheckpointRequest as _soccr_v1_CheckpointRequest, CheckpointRequest__Output as _soccr_v1_CheckpointRequest__Output } from '../../soccr/v1/CheckpointRequest';
import type { Frame as _soccr_v1_Frame, Frame__Output as _soccr_v1_Frame__Output } from '../../soccr/v1/Frame';
import type { GetSessionRequest as _soccr_v1_GetSessionRequest, GetSessionRequest__Output as _soccr_v1_GetSessionRequest__Output } from '../../soccr/v1/GetSessionRequest';
import type { GetVersionRequest as _soccr_v1_GetVersionRequest, GetVersionRequest__Output as _soccr_v1_GetVersionRequest__Output } from '../../soccr/v1/GetVersionRequest';
import type { GetVersionResponse as _soccr_v1_GetVersionResponse, GetVersionResponse__Output as _soccr_v1_GetVersionResponse__Output } from '../../soccr/v1/GetVersionResponse';
import type { HandoffRequest as _soccr_v1_HandoffRequest, HandoffRequest__Output as _soccr_v1_HandoffRequest__Output } from '../../soccr/v1/HandoffRequest';
import type { HandoffResponse as _soccr_v1_HandoffResponse, HandoffResponse__Output as _soccr_v1_HandoffResponse__Output } from '../../soccr/v1/HandoffResponse';
import type { ListSessionsRequest as _soccr_v1_ListSessionsRequest, ListSessionsRequest__Output as _soccr_v1_ListSessionsRequest__Output } from '../../soccr/v1/ListSessionsRequest';
import type { ListSessionsResponse as _soccr_v1_ListSessionsResponse, ListSessionsResponse__Output as _soccr_v1_ListSessionsResponse__Output } from '../../soccr/v1/ListSessionsResponse';
import type { ListSocketsRequest as _soccr_v1_ListSocketsRequest, ListSocketsRequest__Output as _soccr_v1_ListSocketsRequest__Output } from '../../soccr/v1/ListSocketsRequest';
import type { ListSocketsResponse as _soccr_v1_ListSocketsResponse, ListSocketsResponse__Output as _soccr_v1_ListSocketsResponse__Output } from '../../soccr/v1/ListSocketsResponse';
import type { ReleaseRequest as _soccr_v1_ReleaseRequest, ReleaseRequest__Output as _soccr_v1_ReleaseRequest__Output } from '../../soccr/v1/ReleaseRequest';
import type { RenewLeaseRequest as _soccr_v1_RenewLeaseRequest, RenewLeaseRequest__Output as _soccr_v1_RenewLeaseRequest__Output } from '../../soccr/v1/RenewLeaseRequest';
import type { RestoreResponse as _soccr_v1_RestoreResponse, RestoreResponse__Output as _soccr_v1_RestoreResponse__Output } from '../../soccr/v1/RestoreResponse';
import type { ResumeRequest as _soccr_v1_ResumeRequest, ResumeRequest__Output as _soccr_v1_ResumeRequest__Output } from '../../soccr/v1/ResumeRequest';
import type { SessionInfo as _soccr_v1_SessionInfo, SessionInfo__Output as _soccr_v1_SessionInfo__Output } from '../../soccr/v1/SessionInfo';

export interface SocketRepairServiceClient extends grpc.Client {
  /**
   * Restore session: close every restored socket silently (nothing went live). Source session: same
   * as Resume. For orchestrators that abort a migration. FAILED_PRECONDITION (SESSION_BUSY) during a
   * hand-over or a Checkpoint stream; during its Restore stream, immediate (see Resume).
   */
  Abort(argument: _soccr_v1_AbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Abort(argument: _soccr_v1_AbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Abort(argument: _soccr_v1_AbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Abort(argument: _soccr_v1_AbortRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  /**
   * Restore session: close every restored socket silently (nothing went live). Source session: same
   * as Resume. For orchestrators that abort a migration. FAILED_PRECONDITION (SESSION_BUSY) during a
   * hand-over or a Checkpoint stream; during its Restore stream, immediate (see Resume).
   */
  abort(argument: _soccr_v1_AbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  abort(argument: _soccr_v1_AbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  abort(argument: _soccr_v1_AbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  abort(argument: _soccr_v1_AbortRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  
  /**
   * Freezes connections of a process and streams them: a SessionHeader frame, then per connection a
   * ConnectionHeader, its queue bytes in QueueChunk frames of at most 1 MiB, and a ConnectionEnd with a
   * checksum of each queue; a StreamEnd closes the stream. The sockets stay frozen in a session the
   * daemon holds until Resume, Release or the end of its lease. With data_transfer the frames go to
   * another daemon's data endpoint instead, and this stream carries the SessionHeader and StreamEnd.
   */
  Checkpoint(argument: _soccr_v1_CheckpointRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_soccr_v1_Frame__Output>;
  Checkpoint(argument: _soccr_v1_CheckpointRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_soccr_v1_Frame__Output>;
  /**
   * Freezes connections of a process and streams them: a SessionHeader frame, then per connection a
   * ConnectionHeader, its queue bytes in QueueChunk frames of at most 1 MiB, and a ConnectionEnd with a
   * checksum of each queue; a StreamEnd closes the stream. The sockets stay frozen in a session the
   * daemon holds until Resume, Release or the end of its lease. With data_transfer the frames go to
   * another daemon's data endpoint instead, and this stream carries the SessionHeader and StreamEnd.
   */
  checkpoint(argument: _soccr_v1_CheckpointRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_soccr_v1_Frame__Output>;
  checkpoint(argument: _soccr_v1_CheckpointRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_soccr_v1_Frame__Output>;
  
  GetSession(argument: _soccr_v1_GetSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  GetSession(argument: _soccr_v1_GetSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  GetSession(argument: _soccr_v1_GetSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  GetSession(argument: _soccr_v1_GetSessionRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  getSession(argument: _soccr_v1_GetSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  getSession(argument: _soccr_v1_GetSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  getSession(argument: _soccr_v1_GetSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  getSession(argument: _soccr_v1_GetSessionRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  
  /**
   * Daemon version, kernel release and which features work on this host.
   */
  GetVersion(argument: _soccr_v1_GetVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _soccr_v1_GetVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _soccr_v1_GetVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _soccr_v1_GetVersionRequest, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Daemon version, kernel release and which features work on this host.
   */
  getVersion(argument: _soccr_v1_GetVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _soccr_v1_GetVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _soccr_v1_GetVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _soccr_v1_GetVersionRequest, callback: grpc.requestCallback<_soccr_v1_GetVersionResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Hand-off on one host: passes a process's live sockets themselves (the daemon's pidfd_getfd
   * duplicates) to a new owner over the hand-over protocol (docs/handover.md), listening sockets with
   * their accept queues included when asked. No repair mode, no queue copy, no second socket: the new
   * owner holds the very sockets the old one held. The old owner is stopped (SIGSTOP) while it runs. If
   * the receiver fails, refuses or does not answer (HANDOVER_ACK_TIMEOUT_MS), nothing changed: the old
   * owner is continued and keeps every socket, and the call fails (FAILED_PRECONDITION, kind DELIVERY). Once the receiver acknowledged, the daemon closes its duplicates and answers; the old
   * owner is left stopped (or killed with kill_old), so it never reads or accepts on the shared sockets
   * again: kill it (SIGKILL), never continue it.
   */
  Handoff(argument: _soccr_v1_HandoffRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  Handoff(argument: _soccr_v1_HandoffRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  Handoff(argument: _soccr_v1_HandoffRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  Handoff(argument: _soccr_v1_HandoffRequest, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Hand-off on one host: passes a process's live sockets themselves (the daemon's pidfd_getfd
   * duplicates) to a new owner over the hand-over protocol (docs/handover.md), listening sockets with
   * their accept queues included when asked. No repair mode, no queue copy, no second socket: the new
   * owner holds the very sockets the old one held. The old owner is stopped (SIGSTOP) while it runs. If
   * the receiver fails, refuses or does not answer (HANDOVER_ACK_TIMEOUT_MS), nothing changed: the old
   * owner is continued and keeps every socket, and the call fails (FAILED_PRECONDITION, kind DELIVERY). Once the receiver acknowledged, the daemon closes its duplicates and answers; the old
   * owner is left stopped (or killed with kill_old), so it never reads or accepts on the shared sockets
   * again: kill it (SIGKILL), never continue it.
   */
  handoff(argument: _soccr_v1_HandoffRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  handoff(argument: _soccr_v1_HandoffRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  handoff(argument: _soccr_v1_HandoffRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  handoff(argument: _soccr_v1_HandoffRequest, callback: grpc.requestCallback<_soccr_v1_HandoffResponse__Output>): grpc.ClientUnaryCall;
  
  ListSessions(argument: _soccr_v1_ListSessionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  ListSessions(argument: _soccr_v1_ListSessionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  ListSessions(argument: _soccr_v1_ListSessionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  ListSessions(argument: _soccr_v1_ListSessionsRequest, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  listSessions(argument: _soccr_v1_ListSessionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  listSessions(argument: _soccr_v1_ListSessionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  listSessions(argument: _soccr_v1_ListSessionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  listSessions(argument: _soccr_v1_ListSessionsRequest, callback: grpc.requestCallback<_soccr_v1_ListSessionsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The TCP sockets a process holds (listening ones included, marked by their state).
   */
  ListSockets(argument: _soccr_v1_ListSocketsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  ListSockets(argument: _soccr_v1_ListSocketsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  ListSockets(argument: _soccr_v1_ListSocketsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  ListSockets(argument: _soccr_v1_ListSocketsRequest, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The TCP sockets a process holds (listening ones included, marked by their state).
   */
  listSockets(argument: _soccr_v1_ListSocketsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  listSockets(argument: _soccr_v1_ListSocketsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  listSockets(argument: _soccr_v1_ListSocketsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  listSockets(argument: _soccr_v1_ListSocketsRequest, callback: grpc.requestCallback<_soccr_v1_ListSocketsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source session: commit. The daemon drops its copies; the sockets stay frozen and silent, so their
   * owner can be killed without the peer seeing FIN or RST. FAILED_PRECONDITION (SESSION_BUSY) while busy.
   */
  Release(argument: _soccr_v1_ReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Release(argument: _soccr_v1_ReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Release(argument: _soccr_v1_ReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Release(argument: _soccr_v1_ReleaseRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  /**
   * Source session: commit. The daemon drops its copies; the sockets stay frozen and silent, so their
   * owner can be killed without the peer seeing FIN or RST. FAILED_PRECONDITION (SESSION_BUSY) while busy.
   */
  release(argument: _soccr_v1_ReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  release(argument: _soccr_v1_ReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  release(argument: _soccr_v1_ReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  release(argument: _soccr_v1_ReleaseRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  
  /**
   * Pushes a session's lease expiry forward by its lease duration. FAILED_PRECONDITION (SESSION_BUSY)
   * while busy (a lease does not end while a call uses its session).
   */
  RenewLease(argument: _soccr_v1_RenewLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _soccr_v1_RenewLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _soccr_v1_RenewLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _soccr_v1_RenewLeaseRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  /**
   * Pushes a session's lease expiry forward by its lease duration. FAILED_PRECONDITION (SESSION_BUSY)
   * while busy (a lease does not end while a call uses its session).
   */
  renewLease(argument: _soccr_v1_RenewLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _soccr_v1_RenewLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _soccr_v1_RenewLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _soccr_v1_RenewLeaseRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  
  /**
   * Rebuilds connections. The first frame carries RestoreOptions; the rest is exactly what Checkpoint
   * streamed (or a checkpoint file's frames), or, with RestoreOptions.data_transfer, the same frames
   * from a direct data connection. Checksums are verified before anything goes live.
   */
  Restore(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  Restore(metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  Restore(options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  Restore(callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  /**
   * Rebuilds connections. The first frame carries RestoreOptions; the rest is exactly what Checkpoint
   * streamed (or a checkpoint file's frames), or, with RestoreOptions.data_transfer, the same frames
   * from a direct data connection. Checksums are verified before anything goes live.
   */
  restore(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  restore(metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  restore(options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  restore(callback: grpc.requestCallback<_soccr_v1_RestoreResponse__Output>): grpc.ClientWritableStream<_soccr_v1_Frame>;
  
  /**
   * Source session: thaw, the connections go on at the source (a migration is aborted).
   * Held restore session: make the restored sockets live and deliver them. The hand-over takes at most
   * 10 s up to the receiver's acknowledgement and 1 s more to tell it "live" (HANDOVER_ACK_TIMEOUT_MS,
   * HANDOVER_LIVE_LINE_MS in daemon/protocol.ts): give Resume a longer deadline (the client library
   * gives it at least 15 s, RESUME_DEADLINE_MS). Without an answer, ask GetSession: RESUMED is live.
   * 
   * Resume, Release, Abort and RenewLease of a session that another call is using (a Checkpoint stream
   * still open, a hand-over in flight) fail at once with FAILED_PRECONDITION and trailer `soccr-kind`
   * SESSION_BUSY, and change nothing: ask again once that call has ended (a hand-over ends within the
   * bound above). The one exception: Abort of a restore session whose Restore stream is still coming in
   * ends it at once, and that stream then fails with FAILED_PRECONDITION. A session that ended never
   * becomes active again.
   */
  Resume(argument: _soccr_v1_ResumeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Resume(argument: _soccr_v1_ResumeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Resume(argument: _soccr_v1_ResumeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  Resume(argument: _soccr_v1_ResumeRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  /**
   * Source session: thaw, the connections go on at the source (a migration is aborted).
   * Held restore session: make the restored sockets live and deliver them. The hand-over takes at most
   * 10 s up to the receiver's acknowledgement and 1 s more to tell it "live" (HANDOVER_ACK_TIMEOUT_MS,
   * HANDOVER_LIVE_LINE_MS in daemon/protocol.ts): give Resume a longer deadline (the client library
   * gives it at least 15 s, RESUME_DEADLINE_MS). Without an answer, ask GetSession: RESUMED is live.
   * 
   * Resume, Release, Abort and RenewLease of a session that another call is using (a Checkpoint stream
   * still open, a hand-over in flight) fail at once with FAILED_PRECONDITION and trailer `soccr-kind`
   * SESSION_BUSY, and change nothing: ask again once that call has ended (a hand-over ends within the
   * bound above). The one exception: Abort of a restore session whose Restore stream is still coming in
   * ends it at once, and that stream then fails with FAILED_PRECONDITION. A session that ended never
   * becomes active again.
   */
  resume(argument: _soccr_v1_ResumeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  resume(argument: _soccr_v1_ResumeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  resume(argument: _soccr_v1_ResumeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  resume(argument: _soccr_v1_ResumeRequest, callback: grpc.requestCallback<_soccr_v1_SessionInfo__Output>): grpc.ClientUnaryCall;
  
}

export interface SocketRepairServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Restore session: close every restored socket silently (nothing went live). Source session: same
   * as Resume. For orchestrators that abort a migration. FAILED_PRECONDITION (SESSION_BUSY) during a
   * hand-over or a Checkpoint stream; during its Restore stream, immediate (see Resume).
   */
  Abort: grpc.handleUnaryCall<_soccr_v1_AbortRequest__Output, _soccr_v1_SessionInfo>;
  
  /**
   * Freezes connections of a process and streams them: a SessionHeader frame, then per connection a
   * ConnectionHeader, its queue bytes in QueueChunk frames of at most 1 MiB, and a ConnectionEnd with a
   * checksum of each queue; a StreamEnd closes the stream. The sockets stay frozen in a session the
   * daemon holds until Resume, Release or the end of its lease. With data_transfer the frames go to
   * another daemon's data endpoint instead, and this stream carries the SessionHeader and StreamEnd.
   */
  Checkpoint: grpc.handleServerStreamingCall<_soccr_v1_CheckpointRequest__Output, _soccr_v1_Frame>;
  
  GetSession: grpc.handleUnaryCall<_soccr_v1_GetSessionRequest__Output, _soccr_v1_SessionInfo>;
  
  /**
   * Daemon version, kernel release and which features work on this host.
   */
  GetVersion: grpc.handleUnaryCall<_soccr_v1_GetVersionRequest__Output, _soccr_v1_GetVersionResponse>;
  
  /**
   * Hand-off on one host: passes a process's live sockets themselves (the daemon's pidfd_getfd
   * duplicates) to a new owner over the hand-over protocol (docs/handover.md), listening sockets with
   * their accept queues included when asked. No repair mode, no queue copy, no second socket: the new
   * owner holds the very sockets the old one held. The old owner is stopped (SIGSTOP) while it runs. If
   * the receiver fails, refuses or does not answer (HANDOVER_ACK_TIMEOUT_MS), nothing changed: the old
   * owner is continued and keeps every socket, and the call fails (FAILED_PRECONDITION, kind DELIVERY). Once the receiver acknowledged, the daemon closes its duplicates and answers; the old
   * owner is left stopped (or killed with kill_old), so it never reads or accepts on the shared sockets
   * again: kill it (SIGKILL), never continue it.
   */
  Handoff: grpc.handleUnaryCall<_soccr_v1_HandoffRequest__Output, _soccr_v1_HandoffResponse>;
  
  ListSessions: grpc.handleUnaryCall<_soccr_v1_ListSessionsRequest__Output, _soccr_v1_ListSessionsResponse>;
  
  /**
   * The TCP sockets a process holds (listening ones included, marked by their state).
   */
  ListSockets: grpc.handleUnaryCall<_soccr_v1_ListSocketsRequest__Output, _soccr_v1_ListSocketsResponse>;
  
  /**
   * Source session: commit. The daemon drops its copies; the sockets stay frozen and silent, so their
   * owner can be killed without the peer seeing FIN or RST. FAILED_PRECONDITION (SESSION_BUSY) while busy.
   */
  Release: grpc.handleUnaryCall<_soccr_v1_ReleaseRequest__Output, _soccr_v1_SessionInfo>;
  
  /**
   * Pushes a session's lease expiry forward by its lease duration. FAILED_PRECONDITION (SESSION_BUSY)
   * while busy (a lease does not end while a call uses its session).
   */
  RenewLease: grpc.handleUnaryCall<_soccr_v1_RenewLeaseRequest__Output, _soccr_v1_SessionInfo>;
  
  /**
   * Rebuilds connections. The first frame carries RestoreOptions; the rest is exactly what Checkpoint
   * streamed (or a checkpoint file's frames), or, with RestoreOptions.data_transfer, the same frames
   * from a direct data connection. Checksums are verified before anything goes live.
   */
  Restore: grpc.handleClientStreamingCall<_soccr_v1_Frame__Output, _soccr_v1_RestoreResponse>;
  
  /**
   * Source session: thaw, the connections go on at the source (a migration is aborted).
   * Held restore session: make the restored sockets live and deliver them. The hand-over takes at most
   * 10 s up to the receiver's acknowledgement and 1 s more to tell it "live" (HANDOVER_ACK_TIMEOUT_MS,
   * HANDOVER_LIVE_LINE_MS in daemon/protocol.ts): give Resume a longer deadline (the client library
   * gives it at least 15 s, RESUME_DEADLINE_MS). Without an answer, ask GetSession: RESUMED is live.
   * 
   * Resume, Release, Abort and RenewLease of a session that another call is using (a Checkpoint stream
   * still open, a hand-over in flight) fail at once with FAILED_PRECONDITION and trailer `soccr-kind`
   * SESSION_BUSY, and change nothing: ask again once that call has ended (a hand-over ends within the
   * bound above). The one exception: Abort of a restore session whose Restore stream is still coming in
   * ends it at once, and that stream then fails with FAILED_PRECONDITION. A session that ended never
   * becomes active again.
   */
  Resume: grpc.handleUnaryCall<_soccr_v1_ResumeRequest__Output, _soccr_v1_SessionInfo>;
  
}

export interface SocketRepairServiceDefinition extends grpc.ServiceDefinition {
  Abort: MethodDefinition<_soccr_v1_AbortRequest, _soccr_v1_SessionInfo, _soccr_v1_AbortRequest__Output, _soccr_v1_SessionInfo__Output>
  Checkpoint: MethodDefinition<_soccr_v1_CheckpointRequest, _soccr_v1_Frame, _soccr_v1_CheckpointRequest__Output, _soccr_v1_Frame__Output>
  GetSession: MethodDefinition<_soccr_v1_GetSessionRequest, _soccr_v1_SessionInfo, _soccr_v1_GetSessionRequest__Output, _soccr_v1_SessionInfo__Output>
  GetVersion: MethodDefinition<_soccr_v1_GetVersionRequest, _soccr_v1_GetVersionResponse, _soccr_v1_GetVersionRequest__Output, _soccr_v1_GetVersionResponse__Output>
  Handoff: MethodDefinition<_soccr_v1_HandoffRequest, _soccr_v1_HandoffResponse, _soccr_v1_HandoffRequest__Output, _soccr_v1_HandoffResponse__Output>
  ListSessions: MethodDefinition<_soccr_v1_ListSessionsRequest, _soccr_v1_ListSessionsResponse, _soccr_v1_ListSessionsRequest__Output, _soccr_v1_ListSessionsResponse__Output>
  ListSockets: MethodDefinition<_soccr_v1_ListSocketsRequest, _soccr_v1_ListSocketsResponse, _soccr_v1_ListSocketsRequest__Output, _soccr_v1_ListSocketsResponse__Output>
  Release: MethodDefinition<_soccr_v1_ReleaseRequest, _soccr_v1_SessionInfo, _soccr_v1_ReleaseRequest__Output, _soccr_v1_SessionInfo__Output>
  RenewLease: MethodDefinition<_soccr_v1_RenewLeaseRequest, _soccr_v1_SessionInfo, _soccr_v1_RenewLeaseRequest__Output, _soccr_v1_SessionInfo__Output>
  Restore: MethodDefinition<_soccr_v1_Frame, _soccr_v1_RestoreResponse, _soccr_v1_Frame__Output, _soccr_v1_RestoreResponse__Output>
  Resume: MethodDefinition<_soccr_v1_ResumeRequest, _soccr_v1_SessionInfo, _soccr_v1_ResumeRequest__Output, _soccr_v1_SessionInfo__Output>
}
