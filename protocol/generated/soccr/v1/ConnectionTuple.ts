// Original file: protos/soccr/v1/soccr.proto

import type { SocketAddress as _soccr_v1_SocketAddress, SocketAddress__Output as _soccr_v1_SocketAddress__Output } from '../../soccr/v1/SocketAddress';

/**
 * A connection's addresses as its own host sees them.
 */
export interface ConnectionTuple {
  'local'?: (_soccr_v1_SocketAddress | null);
  'remote'?: (_soccr_v1_SocketAddress | null);
}

/**
 * A connection's addresses as its own host sees them.
 */
export interface ConnectionTuple__Output {
  'local': (_soccr_v1_SocketAddress__Output | null);
  'remote': (_soccr_v1_SocketAddress__Output | null);
}
