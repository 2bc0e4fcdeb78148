// The soccr.v1 protos, found and loaded once: the gRPC package definition (grpc-js) and the protobufjs
// root that the frame codec and the saved-state codec use, with the decoding options both share.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

export const PROTO_DIR: string = (() => {
  const candidates = [path.resolve(__dirname, '..', '..', 'protos'), path.resolve(__dirname, '..', 'protos')];
  const found = candidates.find((p) => existsSync(path.join(p, 'soccr', 'v1', 'soccr.proto')));
  if (!found) throw new Error(`protos/ not found; looked in ${candidates.join(', ')}`);
  return found;
})();
export const SOCCR_PROTO = 'soccr/v1/soccr.proto';
/** The gRPC service's full name: the path of every call, the health service's name for it. */
export const SERVICE_NAME = 'soccr.v1.SocketRepairService';

/** Decoding options shared by grpc-js and the file format, so both hand over the same plain objects. */
export const LOAD_OPTIONS = { keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true } as const;

/** The kind of a Restore frame whose bytes did not decode (see loadPackageDefinition). */
export const UNDECODABLE = 'undecodable';

export function loadPackageDefinition(): protoLoader.PackageDefinition {
  const pkg = protoLoader.loadSync(SOCCR_PROTO, { ...LOAD_OPTIONS, includeDirs: [PROTO_DIR] });
  // grpc-js answers a request deserializer that throws with INTERNAL. A Restore frame whose bytes do not
  // decode is the caller's fault: it reaches the handler as a frame of kind UNDECODABLE instead, which
  // the stream check refuses (INVALID_ARGUMENT).
  const restore = (pkg[SERVICE_NAME] as protoLoader.ServiceDefinition | undefined)?.Restore;
  if (restore) {
    const decode = restore.requestDeserialize;
    restore.requestDeserialize = (b: Buffer): object => {
      try {
        return decode(b);
      } catch (err) {
        return { kind: UNDECODABLE, undecodable: `${b.length} bytes: ${err instanceof Error ? err.message : String(err)}` };
      }
    };
  }
  return pkg;
}

/** google.rpc.Status and ErrorInfo: an error's details (protocol/error-status.ts). */
export const STATUS_PROTOS = ['google/rpc/status.proto', 'google/rpc/error_details.proto'];

/** Every soccr.v1 type (state.proto comes in through soccr.proto's import), and google.rpc's two. */
export const protoRoot = new protobuf.Root();
protoRoot.resolvePath = (_origin: string, target: string): string => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
protoRoot.loadSync([SOCCR_PROTO, ...STATUS_PROTOS]);
