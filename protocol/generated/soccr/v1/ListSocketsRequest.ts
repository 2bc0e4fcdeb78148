// Original file: protos/soccr/v1/soccr.proto


export interface ListSocketsRequest {
  'pid'?: (number);
}

export interface ListSocketsRequest__Output {
  'pid': (number);
}
