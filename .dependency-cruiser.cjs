/**
 * The import rules of the tree (issue 11), checked by `npm run depcruise`. Layers, lowest first:
 * protocol/ (shared by both sides) ← daemon/ wings kernel → repair → custody → server (a wing never imports
 * one above it) and client/; test/, lab/, bench/, demo/ sit on top and production code never imports them.
 * daemon/log.ts and daemon/metrics.ts are shared by every wing and import none.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means two modules are one concept, or one of them sits in the wrong layer.',
      // protocol/generated/ mirrors the proto, where a Frame holds a FrameBatch of Frames (types only).
      from: { pathNot: '^protocol/generated/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve to a file or an installed package.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'Production code runs without devDependencies installed (type-only imports are erased).',
      from: { path: '^(daemon|client|protocol|receiver)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'production-not-to-harness',
      severity: 'error',
      comment: 'Tests, the lab, benchmarks and the demo use production code, never the other way round.',
      from: { path: '^(daemon|client|protocol|receiver)/' },
      to: { path: '^(test|lab|bench|demo)/' },
    },
    {
      name: 'demo-bench-not-to-test',
      severity: 'error',
      comment: 'What the demo and benchmarks share with the tests lives in lab/.',
      from: { path: '^(demo|bench)/' },
      to: { path: '^test/' },
    },
    {
      name: 'client-not-to-daemon',
      severity: 'error',
      comment: 'The client library shares the protocol/ layer with the daemon, not its internals.',
      from: { path: '^client/' },
      to: { path: '^daemon/' },
    },
    {
      name: 'protocol-is-the-bottom',
      severity: 'error',
      comment: 'protocol/ is pure: both sides load it, so it loads neither side nor native code.',
      from: { path: '^protocol/' },
      to: { path: ['^(daemon|client|receiver)/', '(^|/)node_modules/ffi-rs/'] },
    },
    {
      name: 'kernel-wing-not-up',
      severity: 'error',
      comment: 'daemon/kernel/ is the lowest wing.',
      from: { path: '^daemon/kernel/' },
      to: { path: '^daemon/(repair|custody|server)/' },
    },
    {
      name: 'repair-wing-not-up',
      severity: 'error',
      comment: 'daemon/repair/ builds on kernel/ only.',
      from: { path: '^daemon/repair/' },
      to: { path: '^daemon/(custody|server)/' },
    },
    {
      name: 'custody-wing-not-up',
      severity: 'error',
      comment: 'daemon/custody/ builds on repair/ and kernel/; the server drives it.',
      from: { path: '^daemon/custody/' },
      to: { path: '^daemon/server/' },
    },
    {
      name: 'shared-daemon-modules-import-no-wing',
      severity: 'error',
      comment: 'daemon/log.ts and daemon/metrics.ts are imported by every wing, so they import none.',
      from: { path: '^daemon/(log|metrics)\\.ts$' },
      to: { path: '^daemon/(kernel|repair|custody|server)/' },
    },
    {
      name: 'nothing-imports-main',
      severity: 'error',
      comment: 'daemon/main.ts is the entry point: it wires the daemon together and nothing depends on it.',
      from: { path: '^daemon/', pathNot: '^daemon/main\\.ts$' },
      to: { path: '^daemon/main\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The script cruises '.', so folders that do not exist yet need no edit here; these hold no TypeScript.
    exclude: { path: '^(dist|build|scratch|docs|native|protos|systemd)/|^bench/build/' },
    // Count `import type` too: a layer that needs another's types depends on it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
