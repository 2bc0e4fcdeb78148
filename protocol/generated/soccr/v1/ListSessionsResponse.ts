// Original file: protos/soccr/v1/soccr.proto

import type { SessionInfo as _soccr_v1_SessionInfo, SessionInfo__Output as _soccr_v1_SessionInfo__Output } from '../../soccr/v1/SessionInfo';

export interface ListSessionsResponse {
  /**
   * Oldest first. Each carries the first page of its connections (see SessionInfo.connections).
   */
  'sessions'?: (_soccr_v1_SessionInfo)[];
  /**
   * Pass it as page_token for the next page; empty on the last page. Sessions created since the first
   * page come on later pages; a session that was dropped (10 minutes after it ended) is skipped.
   */
  'nextPageToken'?: (string);
}

export interface ListSessionsResponse__Output {
  /**
   * Oldest first. Each carries the first page of its connections (see SessionInfo.connections).
   */
  'sessions': (_soccr_v1_SessionInfo__Output)[];
  /**
   * Pass it as page_token for the next page; empty on the last page. Sessions created since the first
   * page come on later pages; a session that was dropped (10 minutes after it ended) is skipped.
   */
  'nextPageToken': (string);
}
