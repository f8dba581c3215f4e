// Preloaded into the Portkey gateway by `make bench-peers` (node --require).
//
// Portkey 1.15.2 on Node cannot relay an OpenAI stream: it wraps the
// upstream fetch() Response with `new Response(stream, upstreamResponse)`
// and then appends its x-portkey-* headers, but @hono/node-server's
// Response keeps the upstream's Headers object, whose guard is
// "immutable" -> "TypeError: immutable", HTTP 500 (Portkey-AI/gateway
// issues #1389, #1550). Returning fetch() answers with a fresh, mutable
// copy of the headers is enough; it costs one small object per request.
'use strict';
const OrigResponse = globalThis.Response;
const origFetch = globalThis.fetch;
globalThis.fetch = async function (...args) {
  const r = await origFetch.apply(this, args);
  return new OrigResponse(r.body, {
    status: r.status,
    statusText: r.statusText,
    headers: new Headers(r.headers),
  });
};
