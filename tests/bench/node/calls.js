'use strict';
/**
 * Fixed work for tests/bench/node/instructions: one call, then N chat calls with 64 in flight,
 * through the free function (CLIENT=0) or a createClient client (CLIENT=1), against BASE.
 * Usage: node calls.js CHECKOUT BASE N
 */
const [root, base, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];
Object.assign(process.env, { LLM_BASE_URL: base, LLM_API_KEY: 'sk-bench', LLM_LOG: 'off' });
const claw = require(root);
const M = [{ role: 'user', content: 'Say hi' }];
const client = process.env.CLIENT === '1' ? claw.createClient({ baseUrl: base, apiKey: 'sk-bench' }) : null;
const call = () => (client ? client.callSpecificModel('bench-model', M) : claw.callSpecificModel('bench-model', M));

(async () => {
  await call();
  let issued = 0;
  const worker = async () => {
    while (issued++ < n) await call();
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
