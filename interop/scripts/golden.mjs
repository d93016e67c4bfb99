// Regenerates testdata/ts-wire.json: what the real TypeScript packages put on the wire, captured on
// loopback, for the node-free Go tests in golden_test.go.
//
//   npm run golden --prefix interop
//
// Captured, v2: the 402 of an @x402/express server (bazaar and payment-identifier declared), the
// PAYMENT-SIGNATURE @x402/fetch answers it with, the /verify and /settle bodies the server posts to
// its facilitator, and the PAYMENT-RESPONSE it then sends. v1: the 402 body of x402-express 1.2,
// the X-PAYMENT of x402-fetch 1.2, the facilitator bodies and the X-PAYMENT-RESPONSE.
//
// The facilitator here is a stub that approves everything: the captures are about wire formats.
// Whether payments settle is what the live tests are for. Keys are the devnet's public test keys.

import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme as registerServerScheme } from "@x402/evm/exact/server";
import { registerExactEvmScheme as registerClientScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { bazaarResourceServerExtension, declareDiscoveryExtension } from "@x402/extensions/bazaar";
import {
  PAYMENT_IDENTIFIER,
  appendPaymentIdentifierToExtensions,
  declarePaymentIdentifierExtension,
  paymentIdentifierResourceServerExtension,
} from "@x402/extensions/payment-identifier";
import { wrapFetchWithPayment as wrapFetchV1 } from "x402-fetch";
import { paymentMiddleware as paymentMiddlewareV1 } from "x402-express";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { listen, recordingFetch } from "./lib.mjs";

const BUYER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"; // devnet account 2
const SELLER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"; // devnet account 1
const RELAYER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"; // devnet account 3
const TOKEN = { address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", name: "Quid Test USD", version: "2", decimals: 6 };
const TX = "0x" + "ab".repeat(32); // what the stub facilitator claims to have settled
const PAYMENT_ID = "pay_quid_golden_0000000001";
const weather = { city: "Lisbon", tempC: 21, sky: "clear" };

const out = { generator: "interop/scripts/golden.mjs", generated: new Date().toISOString(), versions: {}, v2: {}, v1: {} };
for (const p of ["@x402/core", "@x402/evm", "@x402/express", "@x402/extensions", "@x402/fetch", "x402", "x402-express", "x402-fetch", "viem"]) {
  out.versions[p] = JSON.parse(readFileSync(new URL(`../node_modules/${p}/package.json`, import.meta.url))).version;
}

// A facilitator that approves everything and keeps the request bodies exactly as sent.
function stubFacilitator(record, kinds) {
  return createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString("utf8");
    let reply;
    if (req.url === "/supported") {
      reply = { kinds, extensions: [], signers: { "eip155:*": [RELAYER] } };
    } else {
      record[req.url] = body;
      const { paymentPayload, paymentRequirements } = JSON.parse(body);
      const payer = paymentPayload.payload.authorization.from;
      reply =
        req.url === "/verify"
          ? { isValid: true, payer }
          : { success: true, transaction: TX, network: paymentRequirements.network, payer };
    }
    const b = JSON.stringify(reply);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(b);
  });
}

async function captureV2() {
  const network = "eip155:31337";
  const record = {};
  const facilitator = stubFacilitator(record, [{ x402Version: 2, scheme: "exact", network }]);
  const facilitatorURL = await listen(facilitator);

  const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorURL }));
  registerServerScheme(server, { networks: [network] });
  server.registerExtension(bazaarResourceServerExtension);
  server.registerExtension(paymentIdentifierResourceServerExtension);
  const app = express();
  app.use(
    paymentMiddleware(
      {
        "GET /weather": {
          accepts: {
            scheme: "exact",
            network,
            payTo: SELLER,
            price: { amount: "10000", asset: TOKEN.address, extra: { name: TOKEN.name, version: TOKEN.version } },
          },
          description: "Current weather",
          mimeType: "application/json",
          extensions: {
            ...declareDiscoveryExtension({ input: { city: "Lisbon" }, output: { example: weather } }),
            [PAYMENT_IDENTIFIER]: declarePaymentIdentifierExtension(false),
          },
        },
      },
      server,
    ),
  );
  app.get("/weather", (req, res) => res.json(weather));
  const api = createServer(app);
  const apiURL = await listen(api);

  const client = new x402Client();
  registerClientScheme(client, { signer: privateKeyToAccount(BUYER_KEY), networks: [network] });
  client.setSpendControls({ allowedAssets: [{ network, asset: TOKEN.address }] });
  client.registerExtension({
    key: PAYMENT_IDENTIFIER,
    enrichPaymentPayload: async (payload) => {
      appendPaymentIdentifierToExtensions(payload.extensions, PAYMENT_ID);
      return payload;
    },
  });

  // Keep the 402 the client saw, and what it sent back.
  let paymentRequired;
  const sent = [];
  const recording = recordingFetch(sent);
  const fetchWith402 = async (input, init) => {
    const resp = await recording(input, init);
    if (resp.status === 402) paymentRequired = resp.headers.get("PAYMENT-REQUIRED");
    return resp;
  };
  const resp = await wrapFetchWithPayment(fetchWith402, client)(`${apiURL}/weather`);
  if (resp.status !== 200) throw new Error(`v2 capture: status ${resp.status}: ${await resp.text()}`);
  out.v2 = {
    network,
    paymentRequired,
    paymentSignature: sent[1].headers["payment-signature"],
    verifyRequest: record["/verify"],
    settleRequest: record["/settle"],
    paymentResponse: resp.headers.get("PAYMENT-RESPONSE"),
    body: await resp.text(),
  };
  api.close();
  facilitator.close();
}

async function captureV1() {
  const record = {};
  const facilitator = stubFacilitator(record, [{ x402Version: 1, scheme: "exact", network: "base-sepolia" }]);
  const facilitatorURL = await listen(facilitator);
  const app = express();
  app.use(
    paymentMiddlewareV1(
      SELLER,
      {
        "GET /weather": {
          price: {
            amount: "10000",
            asset: { address: TOKEN.address, decimals: TOKEN.decimals, eip712: { name: TOKEN.name, version: TOKEN.version } },
          },
          network: "base-sepolia",
          config: { description: "Current weather", mimeType: "application/json" },
        },
      },
      { url: facilitatorURL },
    ),
  );
  app.get("/weather", (req, res) => res.json(weather));
  const api = createServer(app);
  const apiURL = await listen(api);

  // x402-fetch signs locally; its wallet client is pointed at a dead loopback port so that
  // nothing could reach the internet even if it tried.
  const wallet = createWalletClient({
    account: privateKeyToAccount(BUYER_KEY),
    chain: { ...baseSepolia, rpcUrls: { default: { http: ["http://127.0.0.1:9/"] } } },
    transport: http("http://127.0.0.1:9/"),
  }).extend(publicActions);
  let paymentRequiredBody;
  const sent = [];
  const recording = recordingFetch(sent);
  const fetchWith402 = async (input, init) => {
    const resp = await recording(input, init);
    if (resp.status === 402) paymentRequiredBody = await resp.clone().text();
    return resp;
  };
  const resp = await wrapFetchV1(fetchWith402, wallet)(`${apiURL}/weather`);
  if (resp.status !== 200) throw new Error(`v1 capture: status ${resp.status}: ${await resp.text()}`);
  out.v1 = {
    network: "base-sepolia",
    paymentRequiredBody,
    xPayment: sent[1].headers["x-payment"],
    verifyRequest: record["/verify"],
    settleRequest: record["/settle"],
    xPaymentResponse: resp.headers.get("X-PAYMENT-RESPONSE"),
    body: await resp.text(),
  };
  api.close();
  facilitator.close();
}

await captureV2();
await captureV1();
const file = new URL("../testdata/ts-wire.json", import.meta.url);
writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
process.stderr.write(`wrote ${file.pathname}\n`);
