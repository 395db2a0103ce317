// Streams a reply and prints the tokens as they arrive, then the usage of the whole reply.
//
//   LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... node examples/node/stream.js "Tell me a joke"
//
// Ctrl-C (or a `break` in the loop) cancels the request.
'use strict';

const { callSpecificModel } = require('claw-llm-client');

async function main() {
  const model = process.env.LLM_MODEL_ID || 'qwen-plus';
  const question = process.argv.slice(2).join(' ') || 'Count from one to five.';
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  try {
    const stream = await callSpecificModel(model, [{ role: 'user', content: question }], {
      stream: true,
      signal: controller.signal,
    });
    for await (const chunk of stream) {
      const delta = chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) process.stdout.write(delta.content);
    }
    const done = await stream.finalCompletion();
    process.stdout.write('\n');
    console.log(`[${done.choices[0].finish_reason}] request ${stream.requestId}, usage ${JSON.stringify(done.usage)}`);
  } catch (err) {
    console.log(`\nstream failed: ${err.code}: ${err.message}`);
    process.exitCode = 1;
  }
}

main();
