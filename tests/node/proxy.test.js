'use strict';
// Proxies (the same names as core/tests/proxy.rs): NO_PROXY=* bypasses IP-literal base URLs, and
// a proxy that cannot be reached is named as the proxy. Proxy variables are read from the
// process environment when a client's pool is built, so each case uses createClient.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const llm = require('claw-llm-client');
const { KEY, USER, startGateway, rejection, closedPort } = require('./helpers');

const VARS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'];
let gw;
let saved;
before(async () => {
  gw = await startGateway();
  saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
});
after(async () => {
  for (const k of VARS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  if (gw) await gw.stop();
});

function proxyEnv(vars) {
  for (const k of VARS) delete process.env[k];
  Object.assign(process.env, vars);
}

test('no_proxy_star_bypasses_ip_literal_base_urls', async () => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  proxyEnv({ HTTP_PROXY: dead, http_proxy: dead, NO_PROXY: '*' });
  const c = llm.createClient({ baseUrl: gw.url, apiKey: KEY, logLevel: 'off' });
  const v = await c.callSpecificModel('mock-ok', USER, { timeoutMs: 5000, maxRetries: 0 });
  assert.equal(v.mock_echo.path, '/v1/chat/completions');
});

test('unreachable_proxy_is_named', async () => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  proxyEnv({ HTTP_PROXY: dead, http_proxy: dead });
  const c = llm.createClient({ baseUrl: 'http://claw-proxy-test.invalid:3000', apiKey: KEY, logLevel: 'off' });
  const e = await rejection(c.callSpecificModel('mock-ok', USER, { timeoutMs: 5000, maxRetries: 0 }));
  assert.equal(e.code, 'LLM_CONNECTION_ERROR');
  assert.ok(e.message.includes(`proxy ${dead} refused the connection`), e.message);
});
