/**
 * Where an OTLP span's CPU goes in the receiving process, against Zipkin JSON, in one process
 * (`npm run bench:otlp-decode`): the wire decoder the OTLP doors use for protobuf spans
 * (traces-wire.ts, bytes to plumb spans in one pass), the message-object path it replaced
 * (protobufjs' decode of the request, the OTLP→Zipkin mapping otlpToSpans, both together), and
 * Zipkin JSON's JSON.parse + decodeSpans, over the spans of
 * bench/traces.ts (100 a request, 50 requests), and again with two tags of values unique to each
 * span. OTLP bodies are what an SDK sends (no
 * `plumb.zipkin` attribute). Each figure is the best of 5 rounds of 20 passes, in CPU µs per span.
 *
 *   node bench/otlp-decode.ts
 */
import { bodies } from './span-load.ts';
import { decodeProtobuf, encodeRequest } from '../shared/otlp/codec.ts';
import { otlpToSpans, spansToOtlp, ZIPKIN_FIELDS, type ExportTraceServiceRequest } from '../shared/otlp/traces.ts';
import { decodeTraceRequest } from '../shared/otlp/traces-wire.ts';
import { decodeSpans, type ZipkinSpan } from '../shared/zipkin.ts';

const REQUESTS = 50;
const SPANS = 100;

const json = bodies(REQUESTS, SPANS);
const proto = json.map(toOtlp);
const decoded = proto.map((b) => decodeProtobuf<ExportTraceServiceRequest>('traces', b));

/**
 * The same spans with two more tags whose values differ in every span (a 60-character URL and a
 * request id), which the wire decoder's table of short strings cannot serve.
 */
let serial = 0;
const uniqueJson = json.map((b) => {
  const spans = JSON.parse(b.toString('utf8')) as ZipkinSpan[];
  for (const z of spans) {
    serial++;
    z.tags = { ...z.tags, 'url.full': `https://shop.example.com/api/orders/${serial}?expand=lines&page=${serial % 7}`, 'request.id': `req-${serial.toString(36)}-${(serial * 2654435761) >>> 0}` };
  }
  return Buffer.from(JSON.stringify(spans));
});
const uniqueProto = uniqueJson.map(toOtlp);

function toOtlp(b: Buffer): Buffer {
  const req = spansToOtlp(JSON.parse(b.toString('utf8')) as ZipkinSpan[]) as { resourceSpans: { scopeSpans: { spans: { attributes?: { key: string }[] }[] }[] }[] };
  for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans) for (const span of ss.spans) span.attributes = span.attributes?.filter((kv) => kv.key !== ZIPKIN_FIELDS);
  return Buffer.from(encodeRequest('traces', req));
}

function cpuMicrosPerSpan(pass: () => void): number {
  for (let i = 0; i < 20; i++) pass();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = process.cpuUsage();
    for (let i = 0; i < 20; i++) pass();
    const u = process.cpuUsage(t);
    best = Math.min(best, (u.user + u.system) / (20 * REQUESTS * SPANS));
  }
  return Math.round(best * 100) / 100;
}

const zipkin = cpuMicrosPerSpan(() => {
  for (const b of json) decodeSpans(JSON.parse(b.toString('utf8')));
});
const decode = cpuMicrosPerSpan(() => {
  for (const b of proto) decodeProtobuf('traces', b);
});
const mapping = cpuMicrosPerSpan(() => {
  for (const d of decoded) otlpToSpans(d);
});
const both = cpuMicrosPerSpan(() => {
  for (const b of proto) otlpToSpans(decodeProtobuf<ExportTraceServiceRequest>('traces', b));
});
const wire = cpuMicrosPerSpan(() => {
  for (const b of proto) decodeTraceRequest(b);
});
const uniqueZipkin = cpuMicrosPerSpan(() => {
  for (const b of uniqueJson) decodeSpans(JSON.parse(b.toString('utf8')));
});
const uniqueBoth = cpuMicrosPerSpan(() => {
  for (const b of uniqueProto) otlpToSpans(decodeProtobuf<ExportTraceServiceRequest>('traces', b));
});
const uniqueWire = cpuMicrosPerSpan(() => {
  for (const b of uniqueProto) decodeTraceRequest(b);
});
// the same spans either way
for (const b of [...proto, ...uniqueProto]) if (JSON.stringify(decodeTraceRequest(b)) !== JSON.stringify(otlpToSpans(decodeProtobuf<ExportTraceServiceRequest>('traces', b)))) throw new Error('the wire decoder and the message-object path disagree');
console.log(
  JSON.stringify(
    {
      date: new Date().toISOString(),
      'zipkin JSON (JSON.parse + decodeSpans) µs/span': zipkin,
      'OTLP protobufjs decode µs/span': decode,
      'OTLP otlpToSpans µs/span': mapping,
      'OTLP decode + otlpToSpans µs/span': both,
      'OTLP message-object path / Zipkin': Math.round((both / zipkin) * 100) / 100,
      'OTLP wire decoder µs/span': wire,
      'OTLP wire decoder / Zipkin': Math.round((wire / zipkin) * 100) / 100,
      'with unique url.full and request.id tags: zipkin JSON µs/span': uniqueZipkin,
      'with unique tags: OTLP message-object path µs/span': uniqueBoth,
      'with unique tags: OTLP wire decoder µs/span': uniqueWire,
      'with unique tags: OTLP wire decoder / Zipkin': Math.round((uniqueWire / uniqueZipkin) * 100) / 100,
    },
    null,
    2,
  ),
);
