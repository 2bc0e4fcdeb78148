// The caller of the authorization tests (test/fixtures/auth-caller.ts) run as uid/gid 65534, from a copy
// of the checkout that user can read (other-user.ts).
import { execFile } from 'node:child_process';
import type { CallOutcome } from '../fixtures/auth-caller';
import { NOBODY, OtherUserCopy } from './other-user';

/**
 * The caller's path in a copy of the checkout uid 65534 can read; skips the running test (saying why)
 * if there can be none.
 */
export function nobodyCaller(ctx: Mocha.Context): string {
  return OtherUserCopy.of(NOBODY, NOBODY).program(ctx, 'test/fixtures/auth-caller.js');
}

export interface CallerResult {
  uid?: number;
  GetVersion: CallOutcome;
  ListSockets: CallOutcome;
}

/** Runs the caller (its path from nobodyCaller) as uid/gid 65534, or under `wrapper` (e.g. setpriv with other groups), against `address`. */
export function callAsNobody(caller: string, address: string, wrapper?: string[]): Promise<CallerResult> {
  return new Promise((resolve, reject) => {
    const [cmd, args, opts] = wrapper
      ? [wrapper[0], [...wrapper.slice(1), process.execPath, caller, address], {}]
      : [process.execPath, [caller, address], { uid: NOBODY, gid: NOBODY }];
    execFile(cmd, args, { ...opts, cwd: '/', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`caller failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as CallerResult);
    });
  });
}
