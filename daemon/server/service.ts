// The gRPC service soccr.v1.SocketRepairService: its handler table. Each RPC (or small family of RPCs) is a
// module of its own over the shared call plumbing of calls.ts (admission, logging, errors to status codes,
// metrics). Every failure becomes a status code with a one-line message and, where a kernel call was the
// cause, its errno name in the `soccr-errno` trailer.
import type * as grpc from '@grpc/grpc-js';
import { Calls, ServiceOptions } from './calls';
import { checkpointHandler } from './checkpoint';
import { handoffHandlers } from './handoff';
import { inspectHandlers } from './inspect';
import { restoreHandler } from './restore';
import { sessionHandlers } from './session-rpcs';

export class SocketRepairService {
  private readonly calls: Calls;
  constructor(o: ServiceOptions) {
    this.calls = new Calls(o);
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      ...inspectHandlers(this.calls),
      Checkpoint: checkpointHandler(this.calls),
      Restore: restoreHandler(this.calls),
      ...sessionHandlers(this.calls),
      ...handoffHandlers(this.calls),
    };
  }
}
