// Original file: protos/soccr/v1/soccr.proto


export interface ListSocketsRequest {
  'pid'?: (number);
  /**
   * Paging (AIP-158): at most this many sockets in the answer; 0 takes 1000, more than 10000 takes 10000.
   */
  'pageSize'?: (number);
  /**
   * next_page_token of the previous page, with the same pid; empty for the first page. A token that is
   * not one this daemon gave for this pid: INVALID_ARGUMENT.
   */
  'pageToken'?: (string);
}

export interface ListSocketsRequest__Output {
  'pid': (number);
  /**
   * Paging (AIP-158): at most this many sockets in the answer; 0 takes 1000, more than 10000 takes 10000.
   */
  'pageSize': (number);
  /**
   * next_page_token of the previous page, with the same pid; empty for the first page. A token that is
   * not one this daemon gave for this pid: INVALID_ARGUMENT.
   */
  'pageToken': (string);
}
