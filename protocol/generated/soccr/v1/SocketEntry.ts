// Original file: protos/soccr/v1/soccr.proto

import type { AddressFamily as _soccr_v1_AddressFamily, AddressFamily__Output as _soccr_v1_AddressFamily__Output } from '../../soccr/v1/AddressFamily';
import type { SocketAddress as _soccr_v1_SocketAddress, SocketAddress__Output as _soccr_v1_SocketAddress__Output } from '../../soccr/v1/SocketAddress';
import type { TcpState as _soccr_v1_TcpState, TcpState__Output as _soccr_v1_TcpState__Output } from '../../soccr/v1/TcpState';
import type { Long } from '@grpc/proto-loader';

export interface SocketEntry {
  /**
   * The fd number in the process.
   */
  'fd'?: (number);
  /**
   * Socket inode (as in /proc/PID/fd/N -> socket:[inode]).
   */
  'inode'?: (number | string | Long);
  'family'?: (_soccr_v1_AddressFamily);
  'local'?: (_soccr_v1_SocketAddress | null);
  'remote'?: (_soccr_v1_SocketAddress | null);
  'state'?: (_soccr_v1_TcpState);
  /**
   * Bytes in the send queue (sent but unacknowledged, and never sent).
   */
  'sendQueue'?: (number);
  /**
   * Bytes received but not yet read by the process.
   */
  'recvQueue'?: (number);
}

export interface SocketEntry__Output {
  /**
   * The fd number in the process.
   */
  'fd': (number);
  /**
   * Socket inode (as in /proc/PID/fd/N -> socket:[inode]).
   */
  'inode': (number);
  'family': (_soccr_v1_AddressFamily__Output);
  'local': (_soccr_v1_SocketAddress__Output | null);
  'remote': (_soccr_v1_SocketAddress__Output | null);
  'state': (_soccr_v1_TcpState__Output);
  /**
   * Bytes in the send queue (sent but unacknowledged, and never sent).
   */
  'sendQueue': (number);
  /**
   * Bytes received but not yet read by the process.
   */
  'recvQueue': (number);
}
