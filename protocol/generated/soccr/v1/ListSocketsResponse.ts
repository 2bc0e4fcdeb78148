// Original file: protos/soccr/v1/soccr.proto

import type { SocketEntry as _soccr_v1_SocketEntry, SocketEntry__Output as _soccr_v1_SocketEntry__Output } from '../../soccr/v1/SocketEntry';

export interface ListSocketsResponse {
  'sockets'?: (_soccr_v1_SocketEntry)[];
}

export interface ListSocketsResponse__Output {
  'sockets': (_soccr_v1_SocketEntry__Output)[];
}
