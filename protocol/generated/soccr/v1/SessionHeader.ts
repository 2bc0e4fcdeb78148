// Original file: protos/soccr/v1/soccr.proto

import type { ConnectionTuple as _soccr_v1_ConnectionTuple, ConnectionTuple__Output as _soccr_v1_ConnectionTuple__Output } from '../../soccr/v1/ConnectionTuple';
import type { SkippedSocket as _soccr_v1_SkippedSocket, SkippedSocket__Output as _soccr_v1_SkippedSocket__Output } from '../../soccr/v1/SkippedSocket';
import type { Long } from '@grpc/proto-loader';

export interface SessionHeader {
  /**
   * The source session that holds the frozen sockets.
   */
  'sessionId'?: (string);
  /**
   * When the source daemon resumes the sockets by itself unless told otherwise, Unix milliseconds.
   */
  'leaseExpiresUnixMs'?: (number | string | Long);
  /**
   * How many connections follow.
   */
  'connectionCount'?: (number);
  /**
   * The process the connections were taken from, and the host (nodename) of the source daemon.
   */
  'pid'?: (number);
  'hostname'?: (string);
  /**
   * When the checkpoint was taken, Unix milliseconds.
   */
  'createdUnixMs'?: (number | string | Long);
  /**
   * Every connection's addresses, in stream order, so that a destination can lock all of them in one
   * transaction before it rebuilds the first.
   */
  'tuples'?: (_soccr_v1_ConnectionTuple)[];
  /**
   * The process's sockets this checkpoint left with their owner: with `all`, every TCP socket not taken
   * (listeners, connections in states that cannot move); with allow_partial, also those refused.
   */
  'skipped'?: (_soccr_v1_SkippedSocket)[];
}

export interface SessionHeader__Output {
  /**
   * The source session that holds the frozen sockets.
   */
  'sessionId': (string);
  /**
   * When the source daemon resumes the sockets by itself unless told otherwise, Unix milliseconds.
   */
  'leaseExpiresUnixMs': (number);
  /**
   * How many connections follow.
   */
  'connectionCount': (number);
  /**
   * The process the connections were taken from, and the host (nodename) of the source daemon.
   */
  'pid': (number);
  'hostname': (string);
  /**
   * When the checkpoint was taken, Unix milliseconds.
   */
  'createdUnixMs': (number);
  /**
   * Every connection's addresses, in stream order, so that a destination can lock all of them in one
   * transaction before it rebuilds the first.
   */
  'tuples': (_soccr_v1_ConnectionTuple__Output)[];
  /**
   * The process's sockets this checkpoint left with their owner: with `all`, every TCP socket not taken
   * (listeners, connections in states that cannot move); with allow_partial, also those refused.
   */
  'skipped': (_soccr_v1_SkippedSocket__Output)[];
}
