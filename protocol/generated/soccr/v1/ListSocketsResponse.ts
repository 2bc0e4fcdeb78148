// Original file: protos/soccr/v1/soccr.proto

import type { SocketEntry as _soccr_v1_SocketEntry, SocketEntry__Output as _soccr_v1_SocketEntry__Output } from '../../soccr/v1/SocketEntry';

export interface ListSocketsResponse {
  /**
   * In fd order.
   */
  'sockets'?: (_soccr_v1_SocketEntry)[];
  /**
   * Pass it as page_token for the next page; empty on the last page. Sockets opened or closed between
   * pages show up, or not, as their fd falls after the page already read.
   */
  'nextPageToken'?: (string);
}

export interface ListSocketsResponse__Output {
  /**
   * In fd order.
   */
  'sockets': (_soccr_v1_SocketEntry__Output)[];
  /**
   * Pass it as page_token for the next page; empty on the last page. Sockets opened or closed between
   * pages show up, or not, as their fd falls after the page already read.
   */
  'nextPageToken': (string);
}
