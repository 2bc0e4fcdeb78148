// Original file: protos/soccr/v1/soccr.proto


export interface GetSessionRequest {
  'sessionId'?: (string);
  /**
   * Paging through the session's connections (AIP-158): at most this many in SessionInfo.connections;
   * 0 takes 1000, more than 10000 takes 10000.
   */
  'connectionsPageSize'?: (number);
  /**
   * SessionInfo.next_connections_page_token of the previous page of this session; empty for the first.
   * A token that is not one this daemon gave for this session: INVALID_ARGUMENT.
   */
  'connectionsPageToken'?: (string);
}

export interface GetSessionRequest__Output {
  'sessionId': (string);
  /**
   * Paging through the session's connections (AIP-158): at most this many in SessionInfo.connections;
   * 0 takes 1000, more than 10000 takes 10000.
   */
  'connectionsPageSize': (number);
  /**
   * SessionInfo.next_connections_page_token of the previous page of this session; empty for the first.
   * A token that is not one this daemon gave for this session: INVALID_ARGUMENT.
   */
  'connectionsPageToken': (string);
}
