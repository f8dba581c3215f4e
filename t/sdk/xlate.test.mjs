// The official SDKs of the three APIs (npm "openai", "@anthropic-ai/sdk",
// "@google/genai") against the relay `make run` started, each on models
// whose channels speak the other two APIs (Anthropic <-> Gemini by way of
// OpenAI's format): the demo upstream answers as
// OpenAI (gpt-4o-mini), Anthropic (claude-demo) and Gemini (gemini-demo)
// and refuses any field those APIs do not document.  Completions, streams
// and a tool call and its result, each way.
// Reads AI_RELAY_BASE_URL and AI_RELAY_DEMO_KEY.

import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';

const baseURL = process.env.AI_RELAY_BASE_URL;
const apiKey = process.env.AI_RELAY_DEMO_KEY;

assert.ok(baseURL && apiKey, 'AI_RELAY_* environment is set');

const root = baseURL.replace(/\/v1\/?$/, '');
const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: root, apiKey, maxRetries: 0 });
const genai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl: root } });

const weather = {
    name: 'get_weather',
    description: 'The weather of a city',
    schema: { type: 'object', properties: { city: { type: 'string' } },
              required: ['city'] },
};

let passed = 0;

async function check(name, fn) {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
}

// ------------------------------------------- OpenAI SDK, other channels

for (const model of ['claude-demo', 'gemini-demo']) {
    await check(`openai: chat completion on ${model}`, async () => {
        const r = await openai.chat.completions.create({
            model, max_tokens: 64,
            messages: [{ role: 'system', content: 'Be brief.' },
                       { role: 'user', content: 'Hello relay' }],
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.choices[0].message.content, 'You said: Hello relay');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    });

    await check(`openai: stream with usage on ${model}`, async () => {
        const stream = await openai.chat.completions.create({
            model, stream: true, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: 'Stream please' }],
        });
        let text = '', usage = null, finish = null, chunks = 0;
        for await (const chunk of stream) {
            chunks++;
            if (chunk.usage) usage = chunk.usage;
            const c = chunk.choices[0];
            if (c) {
                text += c.delta?.content ?? '';
                finish = c.finish_reason ?? finish;
            }
        }
        assert.equal(text, 'You said: Stream please');
        assert.equal(finish, 'stop');
        assert.ok(chunks > 2, `in pieces (${chunks})`);
        assert.ok(usage && usage.total_tokens > 0, 'usage arrived');
    });

    await check(`openai: a tool call and its result on ${model}`, async () => {
        const tools = [{ type: 'function', function: {
            name: weather.name, description: weather.description,
            parameters: weather.schema } }];
        const messages = [{ role: 'user', content: 'Weather in Paris?' }];
        const stream = openai.chat.completions.stream({
            model, tools, messages });
        const r = await stream.finalChatCompletion();
        const call = r.choices[0].message.tool_calls?.[0];
        assert.ok(call, 'a tool call');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments),
                         { city: 'Paris' });
        assert.equal(r.choices[0].finish_reason, 'tool_calls');

        messages.push(r.choices[0].message,
                      { role: 'tool', tool_call_id: call.id,
                        content: 'Sunny, 21 C' });
        const r2 = await openai.chat.completions.create({
            model, tools, messages });
        assert.match(r2.choices[0].message.content, /^You said:/);
    });
}

// ----------------------------------- Anthropic SDK, an OpenAI channel

await check('anthropic: message on an OpenAI-compatible channel', async () => {
    const r = await anthropic.messages.create({
        model: 'gpt-4o-mini', max_tokens: 64, system: 'Be brief.',
        messages: [{ role: 'user', content: 'Hello Claude Code' }],
    });
    assert.equal(r.type, 'message');
    assert.equal(r.content[0].type, 'text');
    assert.match(r.content[0].text, /You said: Hello Claude Code/);
    assert.equal(r.stop_reason, 'end_turn');
    assert.ok(r.usage.input_tokens >= 0 && r.usage.output_tokens > 0);
});

await check('anthropic: stream on an OpenAI-compatible channel', async () => {
    const stream = anthropic.messages.stream({
        model: 'gpt-4o-mini', max_tokens: 64,
        messages: [{ role: 'user', content: 'Stream it' }],
    });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const m = await stream.finalMessage();
    assert.match(text, /You said: Stream it/);
    assert.equal(m.content[0].text, text);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.output_tokens > 0, 'usage from message_delta');
});

await check('anthropic: a streamed tool call and its result', async () => {
    const tools = [{ name: weather.name, description: weather.description,
                     input_schema: weather.schema }];
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    const m = await anthropic.messages.stream({
        model: 'gpt-4o-mini', max_tokens: 64, tools, messages,
    }).finalMessage();
    const use = m.content.find((b) => b.type === 'tool_use');
    assert.ok(use, 'a tool_use block');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Paris' });
    assert.equal(m.stop_reason, 'tool_use');

    messages.push({ role: 'assistant', content: m.content },
                  { role: 'user', content: [{ type: 'tool_result',
                    tool_use_id: use.id, content: 'Sunny, 21 C' }] });
    const r = await anthropic.messages.create({
        model: 'gpt-4o-mini', max_tokens: 64, tools, messages });
    assert.equal(r.content[0].type, 'text');
});

await check('anthropic: what OpenAI cannot do is a 400 the SDK reads', async () => {
    await assert.rejects(
        anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 8,
            top_k: 3, messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof Anthropic.BadRequestError
               && /top_k/.test(e.message));
});

await check('anthropic: message and stream on a Gemini channel', async () => {
    const r = await anthropic.messages.create({
        model: 'gemini-demo', max_tokens: 64,
        messages: [{ role: 'user', content: 'Hello Gemini from Claude' }],
    });
    assert.equal(r.content[0].text, 'You said: Hello Gemini from Claude');
    assert.equal(r.stop_reason, 'end_turn');
    assert.ok(r.usage.output_tokens > 0);

    const m = await anthropic.messages.stream({
        model: 'gemini-demo', max_tokens: 64,
        messages: [{ role: 'user', content: 'Stream from Gemini' }],
    }).finalMessage();
    assert.equal(m.content[0].text, 'You said: Stream from Gemini');
    assert.ok(m.usage.output_tokens > 0, 'usage from message_delta');
});

// --------------------------------------- Gemini SDK, an OpenAI channel

await check('genai: generateContent on an OpenAI-compatible channel', async () => {
    const r = await genai.models.generateContent({
        model: 'gpt-4o-mini', contents: 'Hello Gemini',
        config: { systemInstruction: 'Be brief.', maxOutputTokens: 64 },
    });
    assert.match(r.text, /You said: Hello Gemini/);
    assert.equal(r.candidates[0].finishReason, 'STOP');
    assert.ok(r.usageMetadata.candidatesTokenCount > 0);
});

await check('genai: generateContentStream on an OpenAI-compatible channel', async () => {
    const stream = await genai.models.generateContentStream({
        model: 'gpt-4o-mini', contents: 'Stream Gemini' });
    let text = '', chunks = 0, usage = null;
    for await (const chunk of stream) {
        chunks++;
        text += chunk.text ?? '';
        if (chunk.usageMetadata) usage = chunk.usageMetadata;
    }
    assert.match(text, /You said: Stream Gemini/);
    assert.ok(chunks > 2, `in pieces (${chunks})`);
    assert.ok(usage && usage.totalTokenCount > 0, 'usage in the last chunk');
});

await check('genai: a function call and its response', async () => {
    const tools = [{ functionDeclarations: [{
        name: weather.name, description: weather.description,
        parametersJsonSchema: weather.schema }] }];
    const contents = [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }];
    const r = await genai.models.generateContent({
        model: 'gpt-4o-mini', contents, config: { tools } });
    const call = r.functionCalls?.[0];
    assert.ok(call, 'a function call');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.args, { city: 'Paris' });

    contents.push(r.candidates[0].content,
                  { role: 'user', parts: [{ functionResponse: {
                    id: call.id, name: call.name,
                    response: { sky: 'sunny' } } }] });
    const r2 = await genai.models.generateContent({
        model: 'gpt-4o-mini', contents, config: { tools } });
    assert.match(r2.text, /^Hello!/);
});

await check('genai: generateContent and a stream on an Anthropic channel', async () => {
    const r = await genai.models.generateContent({
        model: 'claude-demo', contents: 'Hello Claude from Gemini',
        config: { maxOutputTokens: 64 },
    });
    assert.equal(r.text, 'You said: Hello Claude from Gemini');
    assert.ok(r.usageMetadata.promptTokenCount > 0);

    const stream = await genai.models.generateContentStream({
        model: 'claude-demo', contents: 'Stream from Claude' });
    let text = '';
    for await (const chunk of stream) text += chunk.text ?? '';
    assert.equal(text, 'You said: Stream from Claude');
});

console.log(`${passed} passed`);
