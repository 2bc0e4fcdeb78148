// Original file: protos/soccr/v1/soccr.proto


export interface ConnectionEnd {
  'index'?: (number);
  /**
   * SHA-256 of the whole receive queue and of the whole send queue.
   */
  'recvSha256'?: (Buffer | Uint8Array | string);
  'sendSha256'?: (Buffer | Uint8Array | string);
}

export interface ConnectionEnd__Output {
  'index': (number);
  /**
   * SHA-256 of the whole receive queue and of the whole send queue.
   */
  'recvSha256': (Buffer);
  'sendSha256': (Buffer);
}
