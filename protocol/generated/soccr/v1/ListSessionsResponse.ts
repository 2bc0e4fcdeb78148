// Original file: protos/soccr/v1/soccr.proto

import type { SessionInfo as _soccr_v1_SessionInfo, SessionInfo__Output as _soccr_v1_SessionInfo__Output } from '../../soccr/v1/SessionInfo';

export interface ListSessionsResponse {
  'sessions'?: (_soccr_v1_SessionInfo)[];
}

export interface ListSessionsResponse__Output {
  'sessions': (_soccr_v1_SessionInfo__Output)[];
}
