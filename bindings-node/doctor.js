#!/usr/bin/env node
'use strict';
// `npx claw-llm-client doctor [--model M] [--embedding-model M] [--timeout-ms N] [--json]`:
// the core's `claw-llm doctor`, run against process.env.

const { doctor } = require('./index.js');

async function main(argv) {
  if (argv[0] !== 'doctor') {
    process.stdout.write('usage: npx claw-llm-client doctor [--model M] [--embedding-model M] [--timeout-ms N] [--json]\n');
    return 2;
  }
  const { output, exitCode } = await doctor(argv.slice(1));
  process.stdout.write(output);
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`claw-llm doctor: ${e && e.message}\n`);
    process.exitCode = 1;
  },
);
