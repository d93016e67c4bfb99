// The TypeScript facilitator (x402Facilitator from @x402/core with the exact EVM scheme of
// @x402/evm) on a loopback HTTP server, verifying and settling on quid's devnet through viem over
// JSON-RPC.
//
// Environment:
//   RPC_URL      the devnet's JSON-RPC URL
//   CHAIN_ID     its chain id
//   PRIVATE_KEY  the relayer key that pays the settlement gas
//
// Serves POST /verify, POST /settle, GET /supported. Output: {"listening": url}, then one line
// per request handled: {"endpoint", "response"}. Ends when stdin closes.

import { createServer } from "node:http";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { devnetChain, env, exitWithParent, listen, out } from "./lib.mjs";

exitWithParent();
const chainId = Number(env("CHAIN_ID"));
const account = privateKeyToAccount(env("PRIVATE_KEY"));
const client = createWalletClient({
  account,
  chain: devnetChain(chainId, env("RPC_URL")),
  transport: http(env("RPC_URL")),
  // The devnet mines on demand; viem's default 4 s receipt polling would only add waiting.
  pollingInterval: 50,
}).extend(publicActions);

const facilitator = new x402Facilitator();
registerExactEvmScheme(facilitator, {
  signer: toFacilitatorEvmSigner({ ...client, address: account.address }, { confirmationTimeoutMs: 30_000 }),
  networks: [`eip155:${chainId}`],
});

async function readJSON(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function reply(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === "GET" && req.url === "/supported") {
      return reply(res, 200, facilitator.getSupported());
    }
    if (req.method === "POST" && (req.url === "/verify" || req.url === "/settle")) {
      const { paymentPayload, paymentRequirements } = await readJSON(req);
      const response =
        req.url === "/verify"
          ? await facilitator.verify(paymentPayload, paymentRequirements)
          : await facilitator.settle(paymentPayload, paymentRequirements);
      out({ endpoint: req.url, response });
      return reply(res, 200, response);
    }
    reply(res, 404, { error: "not found" });
  } catch (e) {
    process.stderr.write(`ts-facilitator: ${req.url}: ${e?.stack ?? e}\n`);
    reply(res, 500, { error: String(e?.message ?? e) });
  }
});
await listen(server);
