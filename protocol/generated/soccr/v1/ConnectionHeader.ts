// Original file: protos/soccr/v1/soccr.proto

import type { ConnectionState as _soccr_v1_ConnectionState, ConnectionState__Output as _soccr_v1_ConnectionState__Output } from '../../soccr/v1/ConnectionState';

export interface ConnectionHeader {
  /**
   * Position of this connection in the stream, from 0; every later frame of it carries the same index.
   */
  'index'?: (number);
  /**
   * Stable id of the connection within its session (the source fd and socket inode).
   */
  'id'?: (string);
  /**
   * The fd it had in the source process.
   */
  'fd'?: (number);
  /**
   * The saved state with recv_queue and send_queue empty: their bytes follow in QueueChunk frames,
   * inq_len and outq_len bytes long.
   */
  'state'?: (_soccr_v1_ConnectionState | null);
}

export interface ConnectionHeader__Output {
  /**
   * Position of this connection in the stream, from 0; every later frame of it carries the same index.
   */
  'index': (number);
  /**
   * Stable id of the connection within its session (the source fd and socket inode).
   */
  'id': (string);
  /**
   * The fd it had in the source process.
   */
  'fd': (number);
  /**
   * The saved state with recv_queue and send_queue empty: their bytes follow in QueueChunk frames,
   * inq_len and outq_len bytes long.
   */
  'state': (_soccr_v1_ConnectionState__Output | null);
}
