import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/.work/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // the console's script runs in the browser, as a classic script
    files: ['shared/console/static/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(['document', 'window', 'location', 'fetch', 'setInterval', 'clearInterval', 'setTimeout', 'DOMParser', 'FormData', 'URLSearchParams', 'TextDecoder', 'AbortController', 'console'].map((g) => [g, 'readonly'])),
    },
  },
);
