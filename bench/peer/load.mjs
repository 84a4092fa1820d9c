// A load client for bench/token_endpoint_bench.py, in Node so that the client costs the
// measured servers as little as possible. It reads one JSON job on stdin:
//   {"url": "http://127.0.0.1:PORT/path", "mode": "refresh_token" | "client_credentials",
//    "concurrency": 8, "seconds": 10, "form": {...fields every request sends...},
//    "refresh_tokens": [...one per chain, refresh_token mode only...]}
// and prints one JSON line: {"requests", "errors", "seconds", "p50_ms", "p99_ms", "statuses",
// "refresh_tokens"} (the chains' current refresh tokens, so the next round goes on from them).
import http from 'node:http';

const job = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));
const target = new URL(job.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });

function post(fields) {
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolve) => {
    const request = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
        host: job.host ?? target.host,
      },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    request.on('error', (error) => resolve({ status: 0, text: String(error) }));
    request.end(body);
  });
}

const latencies = [];
const statuses = {};
let errors = 0;
const started = process.hrtime.bigint();
const deadline = started + BigInt(Math.round(job.seconds * 1e9));
const tokens = [...(job.refresh_tokens ?? [])];

async function worker(index) {
  while (process.hrtime.bigint() < deadline) {
    const fields = { ...job.form };
    if (job.mode === 'refresh_token') fields.refresh_token = tokens[index];
    const t0 = process.hrtime.bigint();
    const answer = await post(fields);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
    if (answer.status !== 200) {
      errors += 1;
      if (job.mode === 'refresh_token') break; // a broken chain cannot go on
      continue;
    }
    if (job.mode === 'refresh_token') tokens[index] = JSON.parse(answer.text).refresh_token;
  }
}

await Promise.all(Array.from({ length: job.concurrency }, (_, i) => worker(i)));
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
latencies.sort((a, b) => a - b);
const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null);
process.stdout.write(`${JSON.stringify({
  requests: latencies.length - errors,
  errors,
  seconds: elapsed,
  p50_ms: at(0.5),
  p99_ms: at(0.99),
  statuses,
  refresh_tokens: tokens,
})}\n`);
agent.destroy();
