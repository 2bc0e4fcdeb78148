// soccrctl's argument parsers: each throws commander's InvalidArgumentError, which it reports as usage.
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';

export function parseUint(what: string, max = 0xffffffff): (v: string) => number {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > max) throw new InvalidArgumentError(`${what} must be a whole number${max < 0xffffffff ? ` up to ${max}` : ''}.`);
    return Number(v);
  };
}

export function collectFds(v: string, acc: number[] = []): number[] {
  const fds = v.split(',').map((s) => parseUint('an fd', 0x7fffffff)(s.trim()));
  return [...acc, ...fds];
}

/** unix:PATH (also unix:///PATH, or a bare absolute path) to an absolute path. */
export function parseDeliver(v: string): string {
  let p: string;
  if (v.startsWith('unix://')) p = v.slice('unix://'.length);
  else if (v.startsWith('unix:')) p = v.slice('unix:'.length);
  else if (v.startsWith('/')) p = v;
  else throw new InvalidArgumentError('expected unix:PATH (the Unix socket of the process that takes the connections).');
  if (!p) throw new InvalidArgumentError('the Unix socket path is empty.');
  return path.resolve(p);
}

/** A path, or the name of a named network namespace (ip netns): NAME means /run/netns/NAME. */
export function parseNetns(v: string): string {
  if (!v) throw new InvalidArgumentError('empty network namespace.');
  return v.includes('/') ? path.resolve(v) : `/run/netns/${v}`;
}
