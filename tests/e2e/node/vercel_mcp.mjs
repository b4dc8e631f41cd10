// The Vercel AI SDK against the plugin: generateText or streamText with openai.responses(...) and
// openai.tools.mcp. Prints what the SDK made of the response as one JSON line; any error the SDK
// raises (a schema it rejects, a failed request) exits non-zero with the error.
//   node vercel_mcp.mjs BASE_URL generate|stream '{"serverLabel": ..., "serverUrl": ...}' PROMPT [force]
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';

const [baseURL, mode, toolArgs, prompt, force] = process.argv.slice(2);
const openai = createOpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused' });
const options = {
  model: openai.responses('tiny'),
  prompt,
  temperature: 0,
  maxRetries: 0,
  tools: { mcp: openai.tools.mcp(JSON.parse(toolArgs)) },
};

function summary(content, text, finishReason, warnings) {
  const calls = content.filter((p) => p.type === 'tool-call').map((p) => ({ toolName: p.toolName, input: p.input, providerExecuted: p.providerExecuted }));
  const results = content.filter((p) => p.type === 'tool-result').map((p) => p.output ?? p.result);
  const errors = content.filter((p) => p.type === 'tool-error' || p.type === 'error').map((p) => String(p.error));
  return { text, finishReason, calls, results, errors, warnings: (warnings ?? []).map((w) => w.type) };
}

// A forced provider tool goes through the provider model itself: it sends tool_choice
// {"type": "mcp"} (no server_label) and parses the answer, but the `ai` core's own check then
// compares the call's tool name (`mcp.add`) with `mcp` and throws ToolChoiceViolationError for
// any MCP call, OpenAI's included.
async function forced() {
  const tool = openai.tools.mcp(JSON.parse(toolArgs));
  const result = await openai.responses('tiny').doGenerate({
    prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }],
    tools: [{ type: 'provider', name: 'mcp', id: tool.id, args: tool.args }],
    toolChoice: { type: 'tool', toolName: 'mcp' },
    temperature: 0,
  });
  const text = result.content.filter((p) => p.type === 'text').map((p) => p.text).join('');
  const out = summary(result.content, text, result.finishReason?.unified ?? result.finishReason, result.warnings);
  const body = typeof result.request?.body === 'string' ? JSON.parse(result.request.body) : result.request?.body;
  out.sentToolChoice = body?.tool_choice;
  return out;
}

try {
  if (force) {
    console.log(JSON.stringify(await forced()));
  } else if (mode === 'stream') {
    const streamErrors = [];
    const result = streamText({ ...options, onError: ({ error }) => streamErrors.push(String(error?.stack ?? error)) });
    const parts = [];
    for await (const part of result.fullStream) parts.push(part);
    if (streamErrors.length) throw new Error(streamErrors.join('\n'));
    const out = summary(await result.content, await result.text, await result.finishReason, await result.warnings);
    out.streamTypes = [...new Set(parts.map((p) => p.type))];
    console.log(JSON.stringify(out));
  } else {
    const result = await generateText(options);
    console.log(JSON.stringify(summary(result.content, result.text, result.finishReason, result.warnings)));
  }
} catch (error) {
  console.error(error?.stack ?? String(error));
  if (error?.cause) console.error('cause:', error.cause?.stack ?? error.cause);
  if (error?.responseBody) console.error('responseBody:', error.responseBody);
  if (error?.value) console.error('value:', JSON.stringify(error.value).slice(0, 4000));
  process.exit(1);
}
