// Original file: protos/soccr/v1/soccr.proto


export interface GetSessionRequest {
  'sessionId'?: (string);
}

export interface GetSessionRequest__Output {
  'sessionId': (string);
}
