'use strict';
// bindings-node/index.d.ts is hand-written: a strict TypeScript compile of examples/node/typed.ts
// (which also holds @ts-expect-error lines, so typings that are too loose fail too).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers');

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

test('index.d.ts type-checks examples/node/typed.ts (tsc --noEmit)', { timeout: 120_000 }, (t, done) => {
  assert.ok(fs.existsSync(TSC), 'typescript is missing: run `npm ci`');
  execFile(
    process.execPath,
    [TSC, '--noEmit', '-p', path.join(ROOT, 'examples', 'node', 'tsconfig.json')],
    { cwd: ROOT, timeout: 110_000 },
    (error, stdout, stderr) => {
      assert.equal(error, null, `tsc failed:\n${stdout}${stderr}`);
      done();
    },
  );
});

test('index.d.ts declares every export of index.js', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'bindings-node', 'index.d.ts'), 'utf8');
  for (const name of Object.keys(require('claw-llm-client'))) {
    assert.match(dts, new RegExp(`export declare (function|class|const) ${name}\\b`), name);
  }
});
