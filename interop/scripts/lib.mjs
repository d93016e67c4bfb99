// Shared plumbing of the interop scripts. The Go tests in ../ start these scripts, give them their
// parameters in the environment, and read one JSON object per line from their stdout; everything
// for people goes to stderr.

import { defineChain } from "viem";

// env returns a required environment variable, and exits with a message when it is missing.
export function env(name, fallback) {
  const v = process.env[name];
  if (v !== undefined && v !== "") return v;
  if (fallback !== undefined) return fallback;
  fail(`missing environment variable ${name}`);
}

// out writes one result line for the Go side.
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

export function fail(msg) {
  process.stderr.write(`${process.argv[1]}: ${msg}\n`);
  process.exit(2);
}

// exitWithParent ends a long-running script when the Go test that started it goes away: the test
// holds the script's stdin open and closes it (or dies) when it is done.
export function exitWithParent() {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

// listen serves a node http.Server (or an express app's server) on an ephemeral loopback port and
// reports its URL as {"listening": url}.
export function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      const url = `http://127.0.0.1:${port}`;
      out({ listening: url });
      resolve(url);
    });
  });
}

// devnetChain describes quid's devnet to viem.
export function devnetChain(chainId, rpcUrl) {
  return defineChain({
    id: chainId,
    name: `quid devnet ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

// headersOf returns a plain object of a fetch Headers, names lower-cased.
export function headersOf(headers) {
  const o = {};
  headers.forEach((v, k) => {
    o[k.toLowerCase()] = v;
  });
  return o;
}

// decodeB64JSON decodes an x402 header value (standard base64 of JSON), or returns null.
export function decodeB64JSON(value) {
  if (!value) return null;
  return JSON.parse(Buffer.from(value, "base64").toString("utf8"));
}

// recordingFetch wraps fetch so that the headers of every request it sends are kept, in order.
// The x402 clients take the fetch to use as a parameter, so this sees exactly what they send.
export function recordingFetch(sent) {
  return async (input, init) => {
    const req = new Request(input, init);
    sent.push({ method: req.method, url: req.url, headers: headersOf(req.headers) });
    return fetch(req);
  };
}

// readBody returns the body as JSON when it parses, else as text.
export async function readBody(resp) {
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
