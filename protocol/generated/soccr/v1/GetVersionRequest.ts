// Original file: protos/soccr/v1/soccr.proto


export interface GetVersionRequest {
}

export interface GetVersionRequest__Output {
}
