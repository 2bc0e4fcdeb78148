// Original file: protos/soccr/v1/soccr.proto


export interface ReleaseRequest {
  'sessionId'?: (string);
}

export interface ReleaseRequest__Output {
  'sessionId': (string);
}
