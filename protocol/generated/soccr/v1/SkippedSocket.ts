// Original file: protos/soccr/v1/soccr.proto


/**
 * A socket of the process that --all did not take, and why.
 */
export interface SkippedSocket {
  'fd'?: (number);
  'reason'?: (string);
}

/**
 * A socket of the process that --all did not take, and why.
 */
export interface SkippedSocket__Output {
  'fd': (number);
  'reason': (string);
}
