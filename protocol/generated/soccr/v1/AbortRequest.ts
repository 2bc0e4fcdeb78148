// Original file: protos/soccr/v1/soccr.proto


export interface AbortRequest {
  'sessionId'?: (string);
}

export interface AbortRequest__Output {
  'sessionId': (string);
}
