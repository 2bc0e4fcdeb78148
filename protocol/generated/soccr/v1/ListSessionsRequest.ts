// Original file: protos/soccr/v1/soccr.proto


export interface ListSessionsRequest {
  /**
   * Paging (AIP-158): at most this many sessions; 0 takes 100, more than 1000 takes 1000. A page also
   * ends early once its sessions' connections (each session's first page of them) reach 10000, so that
   * it stays well inside gRPC's default 4 MiB message limit.
   */
  'pageSize'?: (number);
  /**
   * next_page_token of the previous page; empty for the first. INVALID_ARGUMENT for a token this daemon
   * did not give.
   */
  'pageToken'?: (string);
}

export interface ListSessionsRequest__Output {
  /**
   * Paging (AIP-158): at most this many sessions; 0 takes 100, more than 1000 takes 1000. A page also
   * ends early once its sessions' connections (each session's first page of them) reach 10000, so that
   * it stays well inside gRPC's default 4 MiB message limit.
   */
  'pageSize': (number);
  /**
   * next_page_token of the previous page; empty for the first. INVALID_ARGUMENT for a token this daemon
   * did not give.
   */
  'pageToken': (string);
}
