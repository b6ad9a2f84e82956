// openai_client.mjs - a client nobody here wrote: the official `openai` npm
// package calls the mesh gateway's OpenAI-compatible API, streamed and not,
// and checks the answers. Run by tests/integration/test_openai_npm.c:
//
//   MESH_OPENAI_BASE_URL=http://127.0.0.1:<port>/v1 node openai_client.mjs
//
// Optional: MESH_TEST_CONV (the `user`, i.e. the conversation id, prefix).
// Exit 0 when every check passed; otherwise prints what failed and exits 1.
import OpenAI from 'openai';

const baseURL = process.env.MESH_OPENAI_BASE_URL;
if (!baseURL) {
  console.error('MESH_OPENAI_BASE_URL is not set');
  process.exit(2);
}
const convPrefix = process.env.MESH_TEST_CONV || `npm-${process.pid}`;
// The gateway does not check API keys; the SDK insists on having one.
const client = new OpenAI({ baseURL, apiKey: 'not-used', maxRetries: 0, timeout: 20000 });
const QUESTION = '我的保单 P10023 保障什么？';
const CJK = /[\u4e00-\u9fff]/;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function models() {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  check(ids.includes('policy_qa'), `models.list() names policy_qa (${ids.join(', ')})`);
  const m = page.data.find((x) => x.id === 'policy_qa');
  check(m.object === 'model' && Number.isInteger(m.created), 'a model entry has object and created');
}

async function nonStreamed() {
  const user = `${convPrefix}-a`;
  const { data: c, response } = await client.chat.completions
    .create({ model: 'policy_qa', user, messages: [{ role: 'user', content: QUESTION }] })
    .withResponse();
  check(response.headers.get('x-mesh-conversation-id') === user,
        'X-Mesh-Conversation-Id names the conversation from `user`');
  check(c.object === 'chat.completion', 'object is chat.completion');
  check(typeof c.id === 'string' && c.id.startsWith('chatcmpl-'), 'id is chatcmpl-...');
  check(c.model === 'policy_qa', 'model echoes the digital worker');
  check(c.choices.length === 1 && c.choices[0].finish_reason === 'stop', 'one choice, stop');
  const text = c.choices[0].message.content;
  check(c.choices[0].message.role === 'assistant', 'the answer is the assistant\'s');
  check(typeof text === 'string' && text.includes('P10023') && CJK.test(text),
        'the answer talks about P10023, in Chinese');
  check(c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens &&
        c.usage.completion_tokens > 0, 'usage adds up');
  // The same request again: the stored answer (the gateway derives the message id).
  const again = await client.chat.completions.create(
    { model: 'policy_qa', user, messages: [{ role: 'user', content: QUESTION }] });
  check(again.id === c.id && again.choices[0].message.content === text,
        'a retried request gets the stored answer');
  return text;
}

async function streamed(expected) {
  const stream = await client.chat.completions.create({
    model: 'policy_qa',
    user: `${convPrefix}-b`,
    messages: [{ role: 'user', content: QUESTION }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let pieces = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    check(chunk.object === 'chat.completion.chunk', `chunk ${pieces + 1} is a chat.completion.chunk`);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.content) {
        text += choice.delta.content;
        pieces++;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  check(pieces >= 2, `the answer came in ${pieces} pieces`);
  check(finish === 'stop', 'the stream finished with stop');
  check(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens,
        'the usage chunk came (include_usage)');
  check(text === expected, 'the streamed answer equals the unstreamed one');
}

async function errors() {
  try {
    await client.chat.completions.create({ model: 'no-such-worker',
                                           messages: [{ role: 'user', content: 'hi' }] });
    check(false, 'an unknown model is refused');
  } catch (e) {
    check(e instanceof OpenAI.NotFoundError, `unknown model -> NotFoundError (${e.constructor.name})`);
    check(e.status === 404 && e.code === 'model_not_found', 'status 404, code model_not_found');
  }
  try {
    await client.chat.completions.create({ model: 'policy_qa', messages: [] });
    check(false, 'empty messages are refused');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.param === 'messages',
          'empty messages -> BadRequestError on param messages');
  }
}

try {
  await models();
  const text = await nonStreamed();
  await streamed(text);
  await errors();
  console.log('ALL OK');
} catch (e) {
  console.error(`FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
}
