// The per-identity policy file (--policy FILE, JSON), read and checked strictly once at start: an unknown
// key, a value of the wrong kind or an identity that is not uid:N or cert:NAME stops the daemon with a
// message naming the key. The schema is small and fixed, so it is checked by hand here (a schema library
// would add a dependency and word its errors less plainly). The README's Security model shows the form:
//
//   { "adminUids": [1000], "adminIdentities": ["ops.example"],
//     "default": { "handoverPrefixes": ["/run/app"] },
//     "callers": { "uid:1001": { "checkpointUids": ["self", 1002], "transparent": true },
//                  "cert:migrator.example": { "checkpointCgroups": ["/system.slice/app.service"], ... } } }
import { readFileSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { errorMessage } from '../../protocol/errors';
import { CallerRules, RULE_KEYS } from './policy';

export interface PolicyFile {
  /** uids that are admins over Unix sockets, besides root */
  adminUids: number[];
  /** client certificate identities that are admins over TLS */
  adminIdentities: string[];
  /** rules of every non-admin identity that `callers` does not name (field by field over the built-in defaults) */
  default: Partial<CallerRules>;
  /** rules per identity (uid:N, cert:NAME), field by field over `default` */
  callers: Record<string, Partial<CallerRules>>;
}

export const EMPTY_POLICY_FILE: PolicyFile = { adminUids: [], adminIdentities: [], default: {}, callers: {} };

const TOP_KEYS = ['adminUids', 'adminIdentities', 'default', 'callers'] as const;
const MAX_ID = 0xfffffffe;

class PolicyError extends Error {}

const fail = (key: string, why: string): never => {
  throw new PolicyError(`${key}: ${why}`);
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function noOtherKeys(v: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(where ? `${where}.${k}` : k, `unknown key (known: ${allowed.join(', ')})`);
}

function uint(v: unknown, key: string, max = MAX_ID): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(key, `give a whole number 0..${max}, not ${JSON.stringify(v)}`);
  return v as number;
}

function list<T>(v: unknown, key: string, item: (x: unknown, key: string) => T, star: boolean): '*' | T[] {
  if (star && v === '*') return '*';
  if (!Array.isArray(v)) fail(key, `give ${star ? '"*" or ' : ''}a list, not ${JSON.stringify(v)}`);
  return (v as unknown[]).map((x, i) => item(x, `${key}[${i}]`));
}

function uidOrSelf(v: unknown, key: string): number | 'self' {
  return v === 'self' ? 'self' : uint(v, key);
}

function absolutePath(v: unknown, key: string): string {
  if (typeof v !== 'string' || !isAbsolute(v) || posix.normalize(v) !== v) fail(key, `give an absolute path without . or .. (${JSON.stringify(v)})`);
  return v as string;
}

function netnsEntry(v: unknown, key: string): string {
  return v === 'daemon' ? 'daemon' : absolutePath(v, key);
}

function name(v: unknown, key: string): string {
  if (typeof v !== 'string' || !v) fail(key, 'give a non-empty string');
  return v as string;
}

/** One identity's rules (`where` names it in errors). */
function rules(v: unknown, where: string): Partial<CallerRules> {
  if (!isObject(v)) return fail(where, 'give an object of rules');
  noOtherKeys(v, RULE_KEYS, where);
  const r: Partial<CallerRules> = {};
  const k = (key: keyof CallerRules): string => `${where}.${key}`;
  if (v.checkpointUids !== undefined) r.checkpointUids = list(v.checkpointUids, k('checkpointUids'), uidOrSelf, true);
  if (v.checkpointCgroups !== undefined) r.checkpointCgroups = list(v.checkpointCgroups, k('checkpointCgroups'), absolutePath, true);
  if (v.restoreNetns !== undefined) r.restoreNetns = list(v.restoreNetns, k('restoreNetns'), netnsEntry, true);
  if (v.handoverPrefixes !== undefined) r.handoverPrefixes = list(v.handoverPrefixes, k('handoverPrefixes'), absolutePath, true);
  if (v.receiverUids !== undefined) r.receiverUids = list(v.receiverUids, k('receiverUids'), uidOrSelf, true);
  if (v.transparent !== undefined) {
    if (typeof v.transparent !== 'boolean') fail(k('transparent'), 'give true or false');
    r.transparent = v.transparent as boolean;
  }
  if (v.marks !== undefined) r.marks = list(v.marks, k('marks'), (x, key) => uint(x, key, 0xffffffff), true);
  if (v.maxBufferBytes !== undefined) r.maxBufferBytes = v.maxBufferBytes === '*' ? '*' : uint(v.maxBufferBytes, k('maxBufferBytes'), 0x7fffffff);
  return r;
}

/** Checks a parsed policy document; throws an Error naming the first bad key. */
export function parsePolicy(doc: unknown): PolicyFile {
  if (!isObject(doc)) return fail('(top level)', 'give a JSON object');
  noOtherKeys(doc, TOP_KEYS, '');
  const out: PolicyFile = { adminUids: [], adminIdentities: [], default: {}, callers: {} };
  if (doc.adminUids !== undefined) out.adminUids = list(doc.adminUids, 'adminUids', (x, key) => uint(x, key), false) as number[];
  if (doc.adminIdentities !== undefined) out.adminIdentities = list(doc.adminIdentities, 'adminIdentities', name, false) as string[];
  if (doc.default !== undefined) out.default = rules(doc.default, 'default');
  if (doc.callers !== undefined) {
    if (!isObject(doc.callers)) fail('callers', 'give an object whose keys are identities (uid:N, cert:NAME)');
    for (const [id, r] of Object.entries(doc.callers as Record<string, unknown>)) {
      const m = /^uid:(\d+)$/.exec(id);
      if (m) uint(Number(m[1]), `callers.${id}`);
      else if (!/^cert:./.test(id))
        fail(`callers.${id}`, 'an identity is uid:N (a Unix caller) or cert:NAME (a TLS caller, NAME as --allow-identity matched it)');
      out.callers[id] = rules(r, `callers.${id}`);
    }
  }
  return out;
}

/** Reads and checks the policy file at `path`; the error names the file and the key. */
export function readPolicyFile(path: string): PolicyFile {
  let text: string;
  let doc: unknown;
  try {
    text = readFileSync(path, 'utf8');
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`policy file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return parsePolicy(doc);
  } catch (err) {
    if (err instanceof PolicyError) throw new Error(`policy file ${path}: ${err.message}`, { cause: err });
    throw err;
  }
}
