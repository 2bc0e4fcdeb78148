// Original file: protos/soccr/v1/soccr.proto


/**
 * A socket of the process that --all (or allow_partial) did not take, and why.
 */
export interface SkippedSocket {
  'fd'?: (number);
  'reason'?: (string);
  /**
   * The error kind it would have failed with (LISTENING, UNSUPPORTED_STATE, CANNOT_CARRY, NOT_TCP...).
   */
  'kind'?: (string);
}

/**
 * A socket of the process that --all (or allow_partial) did not take, and why.
 */
export interface SkippedSocket__Output {
  'fd': (number);
  'reason': (string);
  /**
   * The error kind it would have failed with (LISTENING, UNSUPPORTED_STATE, CANNOT_CARRY, NOT_TCP...).
   */
  'kind': (string);
}
