// The official OpenAI SDK (npm "openai") against the relay `make run`
// started: a completion, a stream, the models list, a refused key, a
// transcription and an image edit (multipart), a video task and its
// remix, an endpoint
// not served.
// Reads AI_RELAY_BASE_URL, AI_RELAY_DEMO_KEY, AI_RELAY_DEMO_MODEL.

import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';

const baseURL = process.env.AI_RELAY_BASE_URL;
const apiKey = process.env.AI_RELAY_DEMO_KEY;
const model = process.env.AI_RELAY_DEMO_MODEL;

assert.ok(baseURL && apiKey && model, 'AI_RELAY_* environment is set');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
let passed = 0;

async function check(name, fn) {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
}

await check('chat completion', async () => {
    const r = await client.chat.completions.create({
        model, messages: [{ role: 'user', content: 'Hello relay' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.choices[0].message.content, /You said: Hello relay/);
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
});

await check('streamed chat completion', async () => {
    const stream = await client.chat.completions.create({
        model, stream: true,
        messages: [{ role: 'user', content: 'Stream please' }],
    });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
        // the relay asked the upstream for usage: the client must not see
        // that extra chunk (it did not ask), so choices[0] always exists
        assert.ok(chunk.choices.length > 0, 'no usage-only chunk');
        text += chunk.choices[0].delta?.content ?? '';
        chunks++;
    }
    assert.ok(chunks > 5, `streamed in pieces (${chunks})`);
    assert.match(text, /You said: Stream please/);
});

await check('stream with include_usage gets its usage chunk', async () => {
    const stream = await client.chat.completions.create({
        model, stream: true, stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'Usage too' }],
    });
    let usage = null;
    for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(usage && usage.total_tokens > 0, 'usage arrived');
});

await check('models list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes(model), `${model} listed (${ids.join(',')})`);
});

await check('a wrong key is a 401 the SDK understands', async () => {
    const bad = new OpenAI({ baseURL, apiKey: 'sk-wrong-key-0000000000', maxRetries: 0 });
    await assert.rejects(
        bad.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof OpenAI.AuthenticationError && e.status === 401
               && e.code === 'invalid_api_key');
});

await check('an unknown model is a 404 model_not_found', async () => {
    await assert.rejects(
        client.chat.completions.create({ model: 'no-such-model', messages: [] }),
        (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
});

await check('audio.transcriptions.create: a multipart file, the model rewritten', async () => {
    const audio = Buffer.alloc(300000, 7);
    audio.write('\r\n--not-a-boundary\r\n', 1000);
    const r = await client.audio.transcriptions.create({
        file: await toFile(audio, 'speech.mp3', { type: 'audio/mpeg' }),
        model,
    });
    // the demo upstream says what it got: the channel's model, every byte
    assert.match(r.text, /^model=\S+ file=300000 bytes$/);
});

await check('images.edit: a multipart image', async () => {
    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
                               Buffer.alloc(5000, 1)]);
    const r = await client.images.edit({
        image: await toFile(png, 'in.png', { type: 'image/png' }),
        prompt: 'a red hat', model,
    });
    assert.equal(r.data.length, 1);
    assert.match(r.data[0].revised_prompt, /^model=\S+ image=5008$/);
});

await check('videos.create, retrieve and downloadContent: the key\'s own task', async () => {
    const v = await client.videos.create({ model, prompt: 'a cat', seconds: '4' });
    assert.match(v.id, /^video_demo/);
    assert.equal(v.status, 'queued');
    const got = await client.videos.retrieve(v.id);
    assert.equal(got.id, v.id);
    assert.equal(got.status, 'completed');
    const content = await client.videos.downloadContent(v.id);
    assert.equal(Buffer.from(await content.arrayBuffer()).toString(), 'DEMO-MP4');
    await assert.rejects(client.videos.retrieve('video_not_ours'),
        (e) => e instanceof OpenAI.NotFoundError);
});

await check('videos.remix: a new task of the key\'s own video', async () => {
    const v = await client.videos.create({ model, prompt: 'a dog', seconds: '4' });
    const r = await client.videos.remix(v.id, { prompt: 'make it snow' });
    assert.notEqual(r.id, v.id);
    assert.equal(r.remixed_from_video_id, v.id);
    assert.equal(r.status, 'queued');
    const got = await client.videos.retrieve(r.id);
    assert.equal(got.status, 'completed');
    await assert.rejects(client.videos.remix('video_not_ours', { prompt: 'x' }),
        (e) => e instanceof OpenAI.NotFoundError);
});

await check('an endpoint the relay does not serve is a 404', async () => {
    await assert.rejects(
        client.fineTuning.jobs.create({ model, training_file: 'file-x' }),
        (e) => e instanceof OpenAI.NotFoundError && e.code === 'unknown_url');
});

console.log(`${passed} passed`);
