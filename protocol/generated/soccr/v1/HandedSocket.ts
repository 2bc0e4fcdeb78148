// Original file: protos/soccr/v1/soccr.proto

import type { SocketAddress as _soccr_v1_SocketAddress, SocketAddress__Output as _soccr_v1_SocketAddress__Output } from '../../soccr/v1/SocketAddress';
import type { TcpState as _soccr_v1_TcpState, TcpState__Output as _soccr_v1_TcpState__Output } from '../../soccr/v1/TcpState';

export interface HandedSocket {
  /**
   * The fd in the old owner.
   */
  'fd'?: (number);
  'local'?: (_soccr_v1_SocketAddress | null);
  'remote'?: (_soccr_v1_SocketAddress | null);
  'state'?: (_soccr_v1_TcpState);
}

export interface HandedSocket__Output {
  /**
   * The fd in the old owner.
   */
  'fd': (number);
  'local': (_soccr_v1_SocketAddress__Output | null);
  'remote': (_soccr_v1_SocketAddress__Output | null);
  'state': (_soccr_v1_TcpState__Output);
}
