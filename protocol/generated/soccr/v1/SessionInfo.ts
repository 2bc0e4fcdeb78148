// Original file: protos/soccr/v1/soccr.proto

import type { SessionKind as _soccr_v1_SessionKind, SessionKind__Output as _soccr_v1_SessionKind__Output } from '../../soccr/v1/SessionKind';
import type { SessionState as _soccr_v1_SessionState, SessionState__Output as _soccr_v1_SessionState__Output } from '../../soccr/v1/SessionState';
import type { SessionConnection as _soccr_v1_SessionConnection, SessionConnection__Output as _soccr_v1_SessionConnection__Output } from '../../soccr/v1/SessionConnection';
import type { Long } from '@grpc/proto-loader';

export interface SessionInfo {
  'sessionId'?: (string);
  'kind'?: (_soccr_v1_SessionKind);
  'state'?: (_soccr_v1_SessionState);
  /**
   * Source: the owner's pid. Restore: the pid in the source session header.
   */
  'pid'?: (number);
  'createdUnixMs'?: (number | string | Long);
  /**
   * 0 once the session has ended.
   */
  'leaseExpiresUnixMs'?: (number | string | Long);
  /**
   * One page of the session's connections, in stream order: from GetSession the page it asked for,
   * from every other call the first 1000. A session of 40000 connections would not fit in gRPC's default
   * 4 MiB message; next_connections_page_token pages on through GetSession.
   */
  'connections'?: (_soccr_v1_SessionConnection)[];
  /**
   * Restore: the target namespace and delivery path.
   */
  'netns'?: (string);
  'deliverUnixPath'?: (string);
  /**
   * Why a session ended the way it did (lease expired, daemon stopping, ...).
   */
  'reason'?: (string);
  /**
   * GetSession's connections_page_token for the connections after this page; empty when this page is the
   * last.
   */
  'nextConnectionsPageToken'?: (string);
  /**
   * How many connections the session holds in all (connections holds one page of them).
   */
  'connectionCount'?: (number);
  /**
   * The queue bytes of all its connections (receive and send queues), summed.
   */
  'queueBytes'?: (number | string | Long);
}

export interface SessionInfo__Output {
  'sessionId': (string);
  'kind': (_soccr_v1_SessionKind__Output);
  'state': (_soccr_v1_SessionState__Output);
  /**
   * Source: the owner's pid. Restore: the pid in the source session header.
   */
  'pid': (number);
  'createdUnixMs': (number);
  /**
   * 0 once the session has ended.
   */
  'leaseExpiresUnixMs': (number);
  /**
   * One page of the session's connections, in stream order: from GetSession the page it asked for,
   * from every other call the first 1000. A session of 40000 connections would not fit in gRPC's default
   * 4 MiB message; next_connections_page_token pages on through GetSession.
   */
  'connections': (_soccr_v1_SessionConnection__Output)[];
  /**
   * Restore: the target namespace and delivery path.
   */
  'netns': (string);
  'deliverUnixPath': (string);
  /**
   * Why a session ended the way it did (lease expired, daemon stopping, ...).
   */
  'reason': (string);
  /**
   * GetSession's connections_page_token for the connections after this page; empty when this page is the
   * last.
   */
  'nextConnectionsPageToken': (string);
  /**
   * How many connections the session holds in all (connections holds one page of them).
   */
  'connectionCount': (number);
  /**
   * The queue bytes of all its connections (receive and send queues), summed.
   */
  'queueBytes': (number);
}
