// ESM entry of claw-llm-client: the same module as index.js (one native instance).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cjs = require('./index.js');

export const {
  callSpecificModel,
  embed,
  listModels,
  doctor,
  breakerState,
  events,
  flushEvents,
  stats,
  resetStats,
  metricsText,
  flushTelemetry,
  createClient,
  Client,
  ChatStream,
  LLMClientError,
  AbortError,
} = cjs;
export default cjs;
