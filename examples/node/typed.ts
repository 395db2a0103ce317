// Type-checked by tests/node/types.test.js (`tsc --noEmit -p examples/node`): the public
// typings of claw-llm-client, used the way a TypeScript skill would.
import {
  callSpecificModel,
  createClient,
  embed,
  LLMClientError,
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatMessage,
  type ChatStream,
} from 'claw-llm-client';

export async function ask(question: string): Promise<string | null> {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: question },
  ];
  const reply: ChatCompletion = await callSpecificModel('qwen-plus', messages, {
    temperature: 0.2,
    response_format: { type: 'json_object' },
    timeoutMs: 10_000,
    maxRetries: 1,
    headers: { 'x-team': 'skills' },
    some_vendor_field: { anything: true },
  });
  const extra: unknown = reply.x_provider_extra;
  void extra;
  return reply.choices[0]?.message.content ?? null;
}

export async function streamed(signal: AbortSignal): Promise<string> {
  const stream: ChatStream = await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }], {
    stream: true,
    signal,
    idleTimeoutMs: 5_000,
  });
  let text = '';
  for await (const chunk of stream) {
    const c: ChatCompletionChunk = chunk;
    text += c.choices[0]?.delta.content ?? '';
    if (text.length > 1000) break;
  }
  const done = await stream.finalCompletion();
  const calls = done.choices[0]?.message.tool_calls ?? [];
  for (const call of calls) text += call.function.name + call.function.arguments;
  const id: string | undefined = stream.requestId;
  const status: number = stream.status;
  stream.abort();
  return `${text} ${id ?? ''} ${status} ${done.usage?.total_tokens ?? 0}`;
}

export async function vectors(): Promise<number[][]> {
  const client = createClient({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'sk-test', timeoutMs: 5_000 });
  const r = await client.embed('text-embedding-v4', ['a', 'b'], { dimensions: 8 });
  const free = await embed('text-embedding-v4', 'c');
  return [...r.data, ...free.data].map((d) => d.embedding);
}

export function describe(err: unknown): string {
  if (err instanceof LLMClientError) {
    const status: number | undefined = err.status;
    switch (err.code) {
      case 'ETIMEDOUT':
        return `timeout after ${err.timeoutMs ?? '?'} ms`;
      case 'LLM_HTTP_ERROR':
      case 'LLM_API_ERROR':
        return `${status} ${err.type ?? ''} ${err.errorCode ?? ''} ${err.requestId ?? ''}: ${err.cause}`;
      default:
        return `${err.code} after ${err.attempts} attempt(s): ${err.message}`;
    }
  }
  return String(err);
}

export async function misuse(): Promise<void> {
  // @ts-expect-error messages must be an array of messages
  await callSpecificModel('qwen-plus', 'hello');
  // @ts-expect-error stream must be a boolean
  await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }], { stream: 'yes' });
  // @ts-expect-error timeoutMs is a number of milliseconds
  await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }], { timeoutMs: '5s' });
  // @ts-expect-error a non-stream call returns a completion, not a stream
  const s: ChatStream = await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }]);
  void s;
  // @ts-expect-error unknown createClient option
  createClient({ baseUrl: 'http://h', apiKey: 'k', timeout: 5 });
}
