// OpenAI's own Node client library (npm `openai`, installed by scripts/setup.sh) against the
// edgefleet HTTP gateway, as an application would use it: only the base URL and the key change.
// Called by tests/integration/test_gateway.c; prints one JSON document on stdout for the test to
// check, and exits 0 unless the library itself could not be loaded.
//   node gateway_openai_client.cjs MODE BASE_URL API_KEY MODEL [N]
// MODE: basic (chat and completions, streamed and not), concurrent (N streams at once),
//       errors (what the library raises for each refusal)
'use strict';
const path = require('path');

const dir = process.env.EF_OPENAI_JS_DIR;
let OpenAI;
try {
  OpenAI = require(path.join(dir || '', 'node_modules', 'openai'));
  OpenAI = OpenAI.OpenAI || OpenAI.default || OpenAI;
} catch (e) {
  console.error(`openai client library not found under EF_OPENAI_JS_DIR=${dir}: run scripts/setup.sh`);
  process.exit(3);
}

const [mode, baseURL, apiKey, model, nArg] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });

async function streamChat(max_tokens, extra) {
  const s = await client.chat.completions.create({
    model, max_tokens, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'system', content: 'You tell short stories.' },
               { role: 'user', content: 'Tell me about a cat.' }],
    temperature: 0, ...extra });
  let text = '', finish = null, role = null, usage = null, chunks = 0;
  for await (const c of s) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta && ch.delta.role) role = ch.delta.role;
      if (ch.delta && ch.delta.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish, role, usage, chunks };
}

async function basic() {
  const out = {};
  const chat = await client.chat.completions.create({
    model, max_tokens: 24, temperature: 0, user: 'session-basic',
    messages: [{ role: 'user', content: 'Once upon a time' }] });
  out.chat = { object: chat.object, id: chat.id, role: chat.choices[0].message.role,
               text: chat.choices[0].message.content, finish: chat.choices[0].finish_reason,
               usage: chat.usage };
  out.chat_stream = await streamChat(24);
  const comp = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 24,
                                                 temperature: 0 });
  out.completion = { object: comp.object, text: comp.choices[0].text,
                     finish: comp.choices[0].finish_reason, usage: comp.usage };
  const cs = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 24,
                                               temperature: 0, stream: true });
  let text = '', finish = null;
  for await (const c of cs) {
    for (const ch of c.choices) {
      text += ch.text || '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  out.completion_stream = { text, finish };
  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);
  return out;
}

async function concurrent(n) {
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) =>
    streamChat(32, { seed: i + 1 }).catch((e) => ({ error: String(e) }))));
  return { ms: Date.now() - started, results };
}

async function errors() {
  const out = {};
  const tryIt = async (name, fn) => {
    try { await fn(); out[name] = { status: 0 }; } catch (e) {
      out[name] = { status: e.status || -1, kind: e.constructor.name,
                    code: (e.error && e.error.code) || e.code || null };
    }
  };
  await tryIt('unknown_model', () => client.chat.completions.create({
    model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
  await tryIt('bad_field', () => client.chat.completions.create({
    model, temperature: 7, messages: [{ role: 'user', content: 'x' }] }));
  const wrong = new OpenAI({ baseURL, apiKey: 'not-a-key-of-this-fleet', maxRetries: 0 });
  await tryIt('wrong_key', () => wrong.models.list());
  return out;
}

(async () => {
  let out;
  if (mode === 'basic') out = await basic();
  else if (mode === 'concurrent') out = await concurrent(parseInt(nArg || '50', 10));
  else if (mode === 'errors') out = await errors();
  else { console.error(`unknown mode ${mode}`); process.exit(2); }
  console.log(JSON.stringify(out));
})().catch((e) => { console.log(JSON.stringify({ fatal: String(e), status: e.status || null })); });
