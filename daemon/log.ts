// Logging: JSON lines through winston. Each gRPC call gets a child logger carrying its method and, as
// they become known, its session and connection ids.
import * as winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    defaultMeta: { service: 'soccrd' },
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything: for library use and tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
