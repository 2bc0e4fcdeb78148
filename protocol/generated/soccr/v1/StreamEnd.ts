// Original file: protos/soccr/v1/soccr.proto


export interface StreamEnd {
  /**
   * How many connections the stream carried; a restore checks it against what it received.
   */
  'connectionCount'?: (number);
}

export interface StreamEnd__Output {
  /**
   * How many connections the stream carried; a restore checks it against what it received.
   */
  'connectionCount': (number);
}
