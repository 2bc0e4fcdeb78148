// Original file: protos/soccr/v1/soccr.proto


export interface SessionRequest {
  'sessionId'?: (string);
}

export interface SessionRequest__Output {
  'sessionId': (string);
}
