// What every call of soccr.v1.SocketRepairService goes through, whatever its RPC: a logger of its own, admission
// (the authorization hook names the caller or refuses it, the caller takes a call slot), failures turned
// into status codes, and the per-call metrics. The RPCs themselves live one module each (see service.ts).
import * as grpc from '@grpc/grpc-js';
import type { ResourceBudget, SocketBufferCaps } from '../custody/budget';
import type { Journal } from '../custody/journal';
import type { NetworkLock } from '../custody/netlock';
import type { SessionManager } from '../custody/sessions';
import type { Logger } from '../log';
import { callFinished, countSyscallFailure } from '../metrics';
import { SoccrError } from '../../protocol/errors';
import { type ErrorContext, errorStatus } from '../../protocol/error-status';
import type { AssemblyLimits } from '../../protocol/assembler';
import type { FeaturesMsg } from '../../protocol/messages';
import type { DataListener } from './data-path';
import { ANY_CALLER, AuthorizableCall, Caller } from './auth';
import type { Session } from '../custody/sessions';
import { CallerGate, CallerPolicy, PolicyBook } from './policy';

export interface ServiceOptions {
  version: string;
  features: FeaturesMsg;
  sessions: SessionManager;
  log: Logger;
  limits: AssemblyLimits;
  /** Queues of a connection up to this many bytes are read at checkpoint time; larger ones while streaming. */
  eagerQueueBytes: number;
  /** ... and at most this many queue bytes of one session in all */
  eagerSessionBytes: number;
  /** undefined where the network lock does not work on this host */
  netlock: NetworkLock | undefined;
  /**
   * Checks the caller of every call before anything else happens; throws SoccrError UNAUTHENTICATED or
   * FORBIDDEN. Returns who the caller is (auth.ts). Absent: every caller is allowed, as an admin.
   */
  authorize?: (call: AuthorizableCall, method: string) => Caller;
  /** the crash journal: written before each step a restarted daemon would have to undo */
  journal?: Journal;
  /** what each caller may touch (the daemon-wide bound and the per-identity rules); absent: anything */
  policies?: PolicyBook;
  /** per-identity limits on running calls and active sessions; absent: none */
  gate?: CallerGate;
  /** the daemon-wide budget of buffered queue bytes and of held sockets' kernel memory; absent: none */
  budget?: ResourceBudget;
  /** the buffer sizes a socket on this host reaches without forcing (what a forced size is charged beyond) */
  bufferCaps?: SocketBufferCaps;
  /** where direct transfers from other daemons come in (--data-listen); absent: none */
  dataListener?: DataListener;
}

export type { AuthorizableCall } from './auth';

/** A failed call's status: its code, a one-line message, and the trailers (soccr-kind, soccr-errno). */
export type CallStatus = Pick<grpc.StatusObject, 'code' | 'details' | 'metadata'>;

/**
 * Turns any error into a gRPC status error carrying the daemon's kind, the errno name and the session
 * and connection it is about where known (`where`, unless the error names its own).
 */
export function toStatus(err: unknown, where?: ErrorContext): CallStatus {
  countSyscallFailure(err);
  return errorStatus(err, where);
}

/** The session a unary request names (Resume, Release, Abort, RenewLease, GetSession), if any. */
function requestedSession(req: unknown): string | undefined {
  const id = (req as { sessionId?: unknown } | null)?.sessionId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * Logs a call's failure: its status and details, and what caused it where there is more to know than
 * the details say (a SoccrError's cause; any other error itself, with its stack).
 */
export function logFailure(log: Logger, st: CallStatus, err: unknown): void {
  log.warn('call failed', { code: grpc.status[st.code], error: st.details, cause: err instanceof SoccrError ? (err as { cause?: unknown }).cause : err });
}

/** An admitted call: its logger (with the caller's label), the caller, and the function that gives its call slot back. */
export interface Admitted {
  log: Logger;
  caller: Caller;
  leave: () => void;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

const NO_POLICIES = new PolicyBook();

/** The plumbing the RPC modules share; one per service, so that call numbers run across all RPCs. */
export class Calls {
  private nextCall = 1;
  constructor(readonly options: ServiceOptions) {}

  /** The logger of a new call, numbered. */
  log(method: string, extra: Record<string, unknown> = {}): Logger {
    return this.options.log.child({ method, call: this.nextCall++, ...extra });
  }

  /**
   * Lets a call in: the authorization hook names the caller (or refuses it), and the caller takes one of
   * its call slots. Returns the call's logger with the caller's name, and the function that gives the
   * slot back.
   */
  admit(call: AuthorizableCall, method: string, log: Logger): Admitted {
    const caller = this.options.authorize ? this.options.authorize(call, method) : ANY_CALLER;
    // Counted per identity: a new process or channel of the same caller shares its slots.
    const leave = this.options.gate ? this.options.gate.enter(caller.id) : (): void => undefined;
    return { log: this.options.authorize ? log.child({ caller: caller.label }) : log, caller, leave };
  }

  /** What `caller` may touch. */
  policyFor(caller: Caller): CallerPolicy {
    return (this.options.policies ?? NO_POLICIES).policyFor(caller);
  }

  /**
   * FORBIDDEN unless `caller` may act on `s`: it created it, or it is an admin. The refusal names no
   * one (whose the session is stays the owner's business).
   */
  checkOwner(s: Session, caller: Caller): void {
    if (!caller.admin && s.createdBy !== caller.id) throw new SoccrError('FORBIDDEN', `session ${s.id} is not yours: only its creator or an admin may use it`);
  }

  /** The sessions `caller` may see: its own, or every one for an admin. */
  visibleTo(caller: Caller, list: readonly Session[]): Session[] {
    return caller.admin ? [...list] : list.filter((s) => s.createdBy === caller.id);
  }

  /** Wraps a unary handler: logs, maps errors to status codes, never throws into grpc-js. */
  unary<Req, Res>(method: string, fn: (req: Req, log: Logger, caller: Caller) => Res | Promise<Res>): Unary<Req, Res> {
    return (call, callback) => {
      let log = this.log(method);
      let leave = (): void => undefined;
      const started = Date.now();
      const startedAt = performance.now();
      Promise.resolve()
        .then(() => {
          const a = this.admit(call, method, log);
          log = a.log;
          leave = a.leave;
          return fn(call.request, log, a.caller);
        })
        .then(
          (res) => {
            leave();
            log.info('call done', { ms: Date.now() - started });
            callFinished(method, grpc.status.OK, startedAt);
            callback(null, res);
          },
          (err: unknown) => {
            leave();
            const st = toStatus(err, { session: requestedSession(call.request) });
            logFailure(log, st, err);
            callFinished(method, st.code, startedAt);
            callback(st, null);
          },
        );
    };
  }

  /** RESOURCE_EXHAUSTED when the caller's identity already holds as many active sessions as it may. */
  checkSessionQuota(caller: Caller): void {
    this.options.gate?.checkSessions(caller.id, this.options.sessions.active().filter((s) => s.createdBy === caller.id).length);
  }

  /** The network lock a call uses: none if it opted out; refused if it wants one and this host has none. */
  networkLock(optOut: boolean | undefined): NetworkLock | undefined {
    if (optOut) return undefined;
    if (!this.options.netlock) {
      throw new SoccrError(
        'SESSION_STATE',
        'the network lock does not work on this host (is nft installed?); lock the network yourself and pass no_network_lock',
      );
    }
    return this.options.netlock;
  }
}
