// A skill written the way OpenClaw skills use skills/shared/llm_client.js today: the only
// change is where callSpecificModel comes from.
//
//   LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... node examples/node/skill.js "Hi!"
//
// Environment: LLM_BASE_URL, LLM_API_KEY (required); LLM_MODEL_ID (model, default qwen-plus);
// LLM_TIMEOUT_MS, LLM_MAX_RETRIES, LLM_LOG (optional).
'use strict';

const { callSpecificModel } = require('claw-llm-client');

async function summarize(text) {
  const model = process.env.LLM_MODEL_ID || 'qwen-plus';
  const messages = [
    { role: 'system', content: 'You answer in one short sentence.' },
    { role: 'user', content: text },
  ];
  const response = await callSpecificModel(model, messages, { temperature: 0.2, max_tokens: 200 });
  return response.choices[0].message.content;
}

async function main() {
  const text = process.argv.slice(2).join(' ') || 'Say hello to the OpenClaw skills.';
  try {
    console.log(await summarize(text));
  } catch (err) {
    // The log line `[LLM_Client] Error calling <model>: <summary>` was already written to
    // stderr; a skill reports what it needs from the error's fields.
    console.log(`skill failed: ${err.code}${err.status ? ` ${err.status}` : ''}: ${err.message}`);
    process.exitCode = 1;
  }
}

main();
