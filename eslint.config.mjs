// ESLint (flat config) with typescript-eslint: `npm run lint`, run by scripts/test-all.sh.
// The recommended rules, with the few that this code base deliberately does otherwise configured below (and why),
// rather than edits across files that other work is changing.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', 'out/**', 'node_modules/**', '.cache/**', '.vscode-test/**', 'test-results/**', '.test-artifacts/**',
      'test/fixtures-gen/**', '**/*.min.js'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        // Node (scripts, server, tests) and the webview's browser globals (media/)
        process: 'readonly', Buffer: 'readonly', console: 'readonly', __dirname: 'readonly', __filename: 'readonly',
        require: 'readonly', module: 'writable', exports: 'writable', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', clearImmediate: 'readonly',
        queueMicrotask: 'readonly', structuredClone: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly',
        URL: 'readonly', URLSearchParams: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly',
        WebAssembly: 'readonly', performance: 'readonly', fetch: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly',
        window: 'readonly', document: 'readonly', navigator: 'readonly', HTMLElement: 'readonly',
        Event: 'readonly', KeyboardEvent: 'readonly', MouseEvent: 'readonly', MessageEvent: 'readonly', requestAnimationFrame: 'readonly',
        getComputedStyle: 'readonly', CSS: 'readonly', Node: 'readonly', Element: 'readonly', HTMLInputElement: 'readonly',
      },
    },
    rules: {
      // Errors: what is likely a bug. Warnings: style the code base is moving towards, shown by every run and fixed
      // by whoever touches the file next (each is a one-token edit in a file other work is changing).
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      'prefer-const': 'warn',
      'no-regex-spaces': 'warn',
      '@typescript-eslint/no-unused-expressions': ['warn', { allowShortCircuit: true, allowTernary: true }],
      // ESLint 10's new recommended rules, off: parsers initialise every cursor where it is declared (the value may be
      // overwritten on every path, which this rule reports), and rethrown errors carry the cause in their message
      'no-useless-assignment': 'off',
      'preserve-caught-error': 'off',
      // the value arena's views capture `this` in closures on purpose (hot path, no bind)
      '@typescript-eslint/no-this-alias': 'off',
      // byte parsers and the terminal escaper match control characters on purpose
      'no-control-regex': 'off',
      // `for (;;)` loops and `while (true)` readers are the parsers' idiom
      'no-constant-condition': ['error', { checkLoops: false }],
      // `catch {}` that deliberately ignores an error
      'no-empty': ['error', { allowEmptyCatch: true }],
      // non-null assertions after checks the compiler cannot follow (arena indexes, map lookups just set)
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // CommonJS JavaScript (the bins) and tests (lazy requires of optional parts) load with require()
    files: ['**/*.js', '**/*.cjs', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // a disable comment the config already makes unneeded is not a problem
  { linterOptions: { reportUnusedDisableDirectives: 'off' } },
);
