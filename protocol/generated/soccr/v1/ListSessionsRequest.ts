// Original file: protos/soccr/v1/soccr.proto


export interface ListSessionsRequest {
}

export interface ListSessionsRequest__Output {
}
