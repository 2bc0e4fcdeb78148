// Original file: protos/soccr/v1/soccr.proto


export interface ResumeRequest {
  'sessionId'?: (string);
  /**
   * Held restore session: deliver here instead of the path given at Restore.
   */
  'deliverUnixPath'?: (string);
}

export interface ResumeRequest__Output {
  'sessionId': (string);
  /**
   * Held restore session: deliver here instead of the path given at Restore.
   */
  'deliverUnixPath': (string);
}
