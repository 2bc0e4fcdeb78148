// Original file: protos/soccr/v1/soccr.proto


export interface RenewLeaseRequest {
  'sessionId'?: (string);
}

export interface RenewLeaseRequest__Output {
  'sessionId': (string);
}
