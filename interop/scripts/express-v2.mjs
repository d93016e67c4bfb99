// An @x402/express (v2) server charging for GET /weather, through the facilitator at
// FACILITATOR_URL (quid's, or the TypeScript one of ts-facilitator.mjs).
//
// Environment:
//   FACILITATOR_URL                 the facilitator's base URL
//   NETWORK                         eip155:<chain id>
//   PAY_TO                          the seller's address
//   ASSET, ASSET_NAME, ASSET_VERSION the token and its EIP-712 domain
//   PRICE                           atomic units per request
//   BAZAAR                          "1" to declare the route for discovery (bazaar extension)
//
// Output: {"listening": url}. Ends when stdin closes.

import { createServer } from "node:http";
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/server";
import { bazaarResourceServerExtension, declareDiscoveryExtension } from "@x402/extensions/bazaar";
import { env, exitWithParent, listen } from "./lib.mjs";

exitWithParent();
const network = env("NETWORK");
const bazaar = env("BAZAAR", "0") === "1";

const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: env("FACILITATOR_URL") }));
registerExactEvmScheme(server, { networks: [network] });
if (bazaar) server.registerExtension(bazaarResourceServerExtension);

const weather = { city: "Lisbon", tempC: 21, sky: "clear" };

const routes = {
  "GET /weather": {
    accepts: {
      scheme: "exact",
      network,
      payTo: env("PAY_TO"),
      price: {
        amount: env("PRICE"),
        asset: env("ASSET"),
        extra: { name: env("ASSET_NAME"), version: env("ASSET_VERSION") },
      },
    },
    description: "Current weather",
    mimeType: "application/json",
    extensions: bazaar
      ? declareDiscoveryExtension({ input: { city: "Lisbon" }, output: { example: weather } })
      : undefined,
  },
};

const app = express();
app.use(paymentMiddleware(routes, server));
app.get("/weather", (req, res) => res.json(weather));
await listen(createServer(app));
