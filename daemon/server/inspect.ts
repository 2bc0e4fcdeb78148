// The RPCs that only look: GetVersion (what this daemon and its kernel can do) and ListSockets (a
// process's TCP sockets, as procfs shows them).
import type * as grpc from '@grpc/grpc-js';
import { release } from 'node:os';
import { ProcessHandle, TcpSocketInfo, listTcpSockets } from '../repair/acquire';
import { GetVersionResponseMsg, ListSocketsRequestMsg, ListSocketsResponseMsg } from '../../protocol/messages';
import { STREAM_FORMAT, STREAM_FORMATS_READ } from '../../protocol/frames';
import { WIRE_FAMILY, addressToMsg } from '../../protocol/address';
import type { Calls } from './calls';
import { pageSize, pageToken, readPageToken } from './paging';

export function inspectHandlers(calls: Calls): grpc.UntypedServiceImplementation {
  const o = calls.options;
  return {
    GetVersion: calls.unary('GetVersion', (): GetVersionResponseMsg => ({
      version: o.version,
      kernelRelease: release(),
      streamFormat: STREAM_FORMAT,
      streamFormatsRead: [...STREAM_FORMATS_READ],
      features: o.features,
      dataEndpoint: o.dataListener?.endpoint ?? '',
    })),
    // It reveals a process's connections: only of processes the caller may checkpoint, judged on facts
    // confirmed against the process's pidfd (as Checkpoint does), and listed from that same process.
    ListSockets: calls.unary('ListSockets', (req: ListSocketsRequestMsg, _log, caller): ListSocketsResponseMsg => {
      const size = pageSize('sockets', req.pageSize);
      const after = readPageToken('sockets', req.pid, req.pageToken) ?? -1;
      const proc = ProcessHandle.open(req.pid);
      let listed: TcpSocketInfo[];
      try {
        const facts = proc.facts();
        calls.policyFor(caller).checkCheckpoint(req.pid, facts);
        listed = listTcpSockets(req.pid, facts.sockets);
        proc.confirm();
      } finally {
        proc.close();
      }
      const rest = listed.filter((s) => s.fd > after).sort((a, b) => a.fd - b.fd);
      const page = rest.slice(0, size);
      return {
        nextPageToken: page.length < rest.length ? pageToken('sockets', req.pid, page[page.length - 1].fd) : '',
        sockets: page.map((s) => ({
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
