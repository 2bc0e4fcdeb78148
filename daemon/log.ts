// Logging: JSON lines through winston. Each gRPC call gets a child logger carrying its method and, as
// they become known, its session and connection ids. An Error given as a field (`{ error: err }`) is
// written with its kind, errno and cause chain, and with its stack where that says more than the message.
import * as winston from 'winston';
import { SoccrError, SyscallError } from '../protocol/errors';

export type Logger = winston.Logger;

/** How deep a cause chain is written. */
const MAX_CAUSES = 4;

/**
 * An Error as a plain object JSON can carry (as it is, JSON.stringify writes an Error as {}). A
 * SoccrError or SyscallError names its failure in its message, kind and errno: its stack would only
 * repeat where it was raised; any other error (a bug, a library's failure) keeps its stack.
 */
function errorFields(err: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const [k, v] of Object.entries(err)) if (k !== 'cause') out[k] = v;
  if (!(err instanceof SoccrError || err instanceof SyscallError) && err.stack) out.stack = err.stack;
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && depth < MAX_CAUSES) out.cause = cause instanceof Error ? errorFields(cause, depth + 1) : cause;
  return out;
}

const errorsAsFields = winston.format((info) => {
  for (const [k, v] of Object.entries(info)) if (v instanceof Error) info[k] = errorFields(v);
  return info;
});

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), errorsAsFields(), winston.format.json()),
    defaultMeta: { service: 'soccrd' },
    // winston's typings declare Console apart from TransportStream: a typing gap, not a wrong instance
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything: for library use and tests. */
export function silentLogger(): Logger {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- as in createLogger
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
