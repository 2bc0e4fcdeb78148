// The cluster deployment (deploy/kubernetes/soccrd.yaml), offline: every object validated against the
// Kubernetes schemas (kubernetes-models' validate(), generated from the Kubernetes OpenAPI), then checked
// against what the daemon and its systemd unit need: host network and PID namespaces, exactly the unit's
// capabilities, grpc probes on the port --health-listen serves, the socket and state dir on the host.
// Broken copies of the manifest must fail both checks. And the image definition builds from the tarball.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');
const MANIFEST = path.join(ROOT, 'deploy', 'kubernetes', 'soccrd.yaml');

type Obj = Record<string, unknown>;

/**
 * Schema errors of each object, by kubernetes-models (ESM only, so in a child Node): [] when valid.
 * The model is the one for the object's apiVersion and kind.
 */
function schemaErrors(objects: Obj[]): Promise<string[][]> {
  const script = `
    const objects = JSON.parse(await new Response(process.stdin).text());
    const out = [];
    for (const o of objects) {
      const mod = await import('kubernetes-models/' + o.apiVersion + '/' + o.kind);
      try { new mod[o.kind](o).validate(); out.push([]); } catch (e) { out.push(String(e.message).split('\\n')); }
    }
    console.log(JSON.stringify(out));`;
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as string[][]),
    );
    child.stdin?.end(JSON.stringify(objects));
  });
}

/** The capabilities systemd/soccrd.service keeps (CapabilityBoundingSet), without CAP_. */
function unitCapabilities(): string[] {
  const unit = readFileSync(path.join(ROOT, 'systemd', 'soccrd.service'), 'utf8');
  const line = /^CapabilityBoundingSet=(.*)$/m.exec(unit);
  assert.ok(line, 'the unit has a CapabilityBoundingSet');
  return line[1]
    .trim()
    .split(/\s+/)
    .map((c) => c.replace(/^CAP_/, ''))
    .sort();
}

const at = (o: unknown, ...keys: Array<string | number>): unknown =>
  keys.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), o);

/** What the daemon needs of its DaemonSet, as a list of problems ([] when it has all of it). */
function daemonSetProblems(ds: Obj): string[] {
  const problems: string[] = [];
  const pod = at(ds, 'spec', 'template', 'spec') as Obj;
  if (pod.hostNetwork !== true) problems.push('hostNetwork must be true');
  if (pod.hostPID !== true) problems.push('hostPID must be true');
  const containers = pod.containers as Obj[];
  const c = containers.find((x) => x.name === 'soccrd');
  if (!c) return [...problems, 'no soccrd container'];
  const sc = (c.securityContext ?? {}) as Obj;
  if (sc.privileged !== false) problems.push('privileged must be false: the capabilities below, no more');
  if (sc.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation must be false (NoNewPrivileges)');
  const add = ((at(sc, 'capabilities', 'add') ?? []) as string[]).map((x) => x.replace(/^CAP_/, '')).sort();
  if (JSON.stringify(add) !== JSON.stringify(unitCapabilities()))
    problems.push(`capabilities ${add.join(' ')} differ from the unit's ${unitCapabilities().join(' ')}`);
  if (JSON.stringify(at(sc, 'capabilities', 'drop')) !== '["ALL"]') problems.push('capabilities must drop ALL');
  const args = (c.args ?? []) as string[];
  const flag = (name: string): string[] => args.flatMap((a) => (a.startsWith(`--${name}=`) ? [a.slice(name.length + 3)] : []));
  // $(VAR) in args: each defined in env
  const env = new Set(((c.env ?? []) as Obj[]).map((e) => e.name as string));
  for (const a of args) for (const m of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) if (!env.has(m[1])) problems.push(`${a}: $(${m[1]}) is not in env`);
  // probes: grpc, on the port of --health-listen (the kubelet dials the pod's address: the node's)
  const health = flag('health-listen');
  const healthPort = health.length === 1 ? Number(/:(\d+)$/.exec(health[0])?.[1]) : NaN;
  if (health.length !== 1 || !health[0].startsWith('$(NODE_IP):')) problems.push('one --health-listen on $(NODE_IP)');
  for (const probe of ['livenessProbe', 'readinessProbe']) {
    const port = at(c, probe, 'grpc', 'port');
    if (port !== healthPort) problems.push(`${probe} must be a grpc probe on the health port ${healthPort}, not ${String(port)}`);
  }
  // the Unix socket's directory and the state dir on the host
  const mounts = new Map(((c.volumeMounts ?? []) as Obj[]).map((m) => [m.mountPath as string, m.name as string]));
  const volumes = new Map(((pod.volumes ?? []) as Obj[]).map((v) => [v.name as string, v]));
  for (const name of mounts.values()) if (!volumes.has(name)) problems.push(`volume mount ${name} has no volume`);
  const onHost = (dir: string, what: string): void => {
    const vol = volumes.get(mounts.get(dir) ?? '');
    if (at(vol, 'hostPath', 'path') !== dir) problems.push(`${what} ${dir} must be the host's ${dir} (a hostPath mounted there)`);
  };
  const unix = flag('listen').filter((l) => l.startsWith('unix://'));
  if (unix.length !== 1) problems.push('one --listen=unix://...');
  else onHost(path.dirname(unix[0].slice('unix://'.length)), 'the socket directory');
  const state = flag('state-dir');
  if (state.length !== 1) problems.push('one --state-dir');
  else onHost(state[0], 'the state directory');
  for (const prefix of flag('handover-prefix')) onHost(prefix, 'the hand-over directory');
  return problems;
}

describe('cluster deployment (deploy/)', function () {
  this.timeout(120_000);
  const docs = (): Obj[] => parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJS() as Obj);

  it('the manifest validates against the Kubernetes schemas and gives the daemon what its unit gives it', async function () {
    const objects = docs();
    assert.deepEqual(
      objects.map((o) => `${String(o.apiVersion)}/${String(o.kind)}`),
      ['v1/Namespace', 'apps/v1/DaemonSet'],
    );
    assert.deepEqual(await schemaErrors(objects), [[], []]);
    const ds = objects[1];
    assert.deepEqual(daemonSetProblems(ds), []);
    assert.equal(at(ds, 'metadata', 'namespace'), at(objects[0], 'metadata', 'name'));
  });

  it('a wrong manifest fails: a schema error, a missing capability, a probe elsewhere, no host PID namespace', async function () {
    const broken = (edit: (ds: Obj) => void): Obj => {
      const ds = docs()[1];
      edit(ds);
      return ds;
    };
    const container = (ds: Obj): Obj => (at(ds, 'spec', 'template', 'spec', 'containers') as Obj[])[0];
    // schema: a capability list given as a string, a probe port given as a name (grpc probes take a number)
    const schemaBroken = [
      broken((ds) => (((container(ds).securityContext as Obj).capabilities as Obj).add = 'NET_ADMIN')),
      broken((ds) => ((container(ds).livenessProbe as Obj).grpc = { port: 'health' })),
      broken((ds) => ((at(ds, 'spec') as Obj).selector = 'soccrd')),
    ];
    const errors = await schemaErrors(schemaBroken);
    for (const [i, e] of errors.entries()) assert.ok(e.length > 0, `broken copy ${i} passed the schema`);
    assert.match(errors[0].join(' '), /capabilities\/add must be array/);
    // what the daemon needs
    const lacking = broken((ds) => {
      const caps = (container(ds).securityContext as Obj).capabilities as Obj;
      caps.add = (caps.add as string[]).filter((c) => c !== 'SYS_PTRACE');
    });
    assert.match(daemonSetProblems(lacking).join('\n'), /capabilities .* differ from the unit's/);
    const probeElsewhere = broken((ds) => (((container(ds).readinessProbe as Obj).grpc as Obj).port = 7070));
    assert.match(daemonSetProblems(probeElsewhere).join('\n'), /readinessProbe must be a grpc probe on the health port 7072/);
    const noHostPid = broken((ds) => delete (at(ds, 'spec', 'template', 'spec') as Obj).hostPID);
    assert.deepEqual(daemonSetProblems(noHostPid), ['hostPID must be true']);
    const stateInPod = broken((ds) => ((at(ds, 'spec', 'template', 'spec', 'volumes') as Obj[])[1].hostPath = { path: '/tmp/elsewhere' }));
    assert.match(daemonSetProblems(stateInPod).join('\n'), /the state directory \/var\/lib\/soccrd must be the host's/);
  });

  it('the image is Debian with Node 20, built from the npm tarball', function () {
    const dockerfile = readFileSync(path.join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length > 0 && froms.every((f) => /^node:20-(bookworm|trixie)(-slim)?$/.test(f)), `Debian-based Node 20 images: ${froms.join(', ')}`);
    assert.match(dockerfile, /^COPY soccrd-\*\.tgz /m);
    assert.match(dockerfile, /npm install -g [^\n]*\/tmp\/soccrd-\*\.tgz/);
    // the DaemonSet runs the image's entry point with its own arguments
    const ds = docs()[1];
    assert.match(dockerfile, /^ENTRYPOINT \["soccrd"\]$/m);
    assert.equal(at(ds, 'spec', 'template', 'spec', 'containers', 0, 'command'), undefined);
  });
});
