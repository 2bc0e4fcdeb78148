// @ts-check
// Lint for every TypeScript file in the repository, with type information (typescript-eslint's strictest
// presets). Layout is prettier's job (see .prettierrc.json): eslint-config-prettier, last, turns off every
// rule that only decides layout.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier/flat';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // protocol/generated/ is proto-loader-gen-types' output (npm run gen), checked by tsc, not written by hand.
    // native/build.js is plain Node that runs before anything is installed; it has no types to check.
    ignores: ['dist/**', 'node_modules/**', 'build/**', 'bench/build/**', 'scratch/**', 'native/**/*.js', 'protocol/generated/**'],
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: {
        // Each file is checked with the tsconfig.json that includes it: a new top-level folder must be in its "include".
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Ports, pids, errnos and byte counts go into messages as numbers; String() around each would only add noise.
      // (The other options are spelled out: an options object replaces the preset's, whose defaults are lax.)
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowAny: false, allowBoolean: false, allowNullish: false, allowRegExp: false, allowNever: false },
      ],
      // `(x) => resolve(x)` and `() => clearTimeout(t)` are callbacks whose result nobody reads.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // `T[]` for simple element types, `Array<{ ... }>` / `ReadonlyArray<A | B>` where `[]` would hide the element type.
      '@typescript-eslint/array-type': ['error', { default: 'array-simple' }],
      // It asks for `x!` where no-non-null-assertion (strict) forbids `x!`: the two contradict; keep the stricter one.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
      // Its findings here are false: TypeScript does not see a `let` flag set inside a callback (`if (!ended)`
      // after `on('end', () => (ended = true))` reads as "always true"), nor wire input checked against the type
      // it claims (decoders validate values their type says cannot occur). Revisit with noUncheckedIndexedAccess.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // `const { dropped: _d, ...rest } = o` omits a field on purpose; `_name` marks a parameter an interface requires.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['eslint.config.mjs'],
    extends: [js.configs.recommended],
  },
  prettier,
);
