'use strict';
/**
 * The peer claw-llm-client replaces: a client written the way the legacy
 * skills/shared/llm_client.js works. Configuration is read from process.env at every call,
 * one fetch POST per call with an AbortController timeout, `await res.json()`, then `res.ok`
 * is checked. No retries, no streaming (the legacy client had neither).
 */

function endpoint(path) {
  const base = (process.env.LLM_BASE_URL || '').trim().replace(/\/+$/, '');
  if (!base) throw new Error('LLM_BASE_URL is not set');
  return /\/v\d+$/.test(base) ? `${base}${path}` : `${base}/v1${path}`;
}

async function post(path, model, body, options = {}) {
  const apiKey = (process.env.LLM_API_KEY || '').trim();
  const timeoutMs = options.timeoutMs || Number(process.env.LLM_TIMEOUT_MS) || 60000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetch(endpoint(path), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${apiKey}`,
      },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const data = await res.json();
    if (!res.ok) {
      const msg = (data && data.error && data.error.message) || `HTTP ${res.status}`;
      const err = new Error(msg);
      err.code = 'LLM_HTTP_ERROR';
      err.status = res.status;
      throw err;
    }
    return data;
  } catch (e) {
    if (e.name === 'AbortError') {
      const err = new Error(`timeout (${timeoutMs}ms)`);
      err.code = 'ETIMEDOUT';
      console.error(`[LLM_Client] Error calling ${model}: ${err.message}`);
      throw err;
    }
    console.error(`[LLM_Client] Error calling ${model}: ${e.message}`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function callSpecificModel(modelName, messages, options = {}) {
  const { timeoutMs, ...params } = options;
  return post('/chat/completions', modelName, { model: modelName, messages, ...params }, { timeoutMs });
}

async function embed(model, input, options = {}) {
  const { timeoutMs, ...params } = options;
  return post('/embeddings', model, { model, input, encoding_format: 'float', ...params }, { timeoutMs });
}

module.exports = { callSpecificModel, embed };
