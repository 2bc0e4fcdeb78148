// The RPCs that only look: GetVersion (what this daemon and its kernel can do) and ListSockets (a
// process's TCP sockets, as procfs shows them).
import type * as grpc from '@grpc/grpc-js';
import { release } from 'node:os';
import { listTcpSockets } from '../repair/acquire';
import { GetVersionResponseMsg, ListSocketsRequestMsg, ListSocketsResponseMsg } from '../../protocol/messages';
import { STREAM_FORMAT } from '../../protocol/frames';
import { WIRE_FAMILY, addressToMsg } from '../../protocol/address';
import type { Calls } from './calls';

export function inspectHandlers(calls: Calls): grpc.UntypedServiceImplementation {
  const o = calls.options;
  return {
    GetVersion: calls.unary('GetVersion', (): GetVersionResponseMsg => ({
      version: o.version,
      kernelRelease: release(),
      streamFormat: STREAM_FORMAT,
      features: o.features,
      dataEndpoint: o.dataListener?.endpoint ?? '',
    })),
    // It reveals a process's connections: only of processes the caller may checkpoint.
    ListSockets: calls.unary('ListSockets', (req: ListSocketsRequestMsg, _log, caller): ListSocketsResponseMsg => {
      calls.policyFor(caller).checkCheckpoint(req.pid);
      return {
        sockets: listTcpSockets(req.pid).map((s) => ({
          fd: s.fd,
          inode: s.inode,
          family: WIRE_FAMILY[s.family],
          local: addressToMsg(s.local),
          remote: addressToMsg(s.remote),
          state: s.state,
          sendQueue: s.sendQueue,
          recvQueue: s.recvQueue,
        })),
      };
    }),
  };
}
