// A legacy v1 server, x402-express 1.2, charging for GET /weather on "base-sepolia" (the devnet
// with chain id 84532) through the facilitator at FACILITATOR_URL.
//
// Environment:
//   FACILITATOR_URL                  the facilitator's base URL
//   PAY_TO                           the seller's address
//   ASSET, ASSET_NAME, ASSET_VERSION the token and its EIP-712 domain
//   ASSET_DECIMALS                   its decimals
//   PRICE                            atomic units per request
//
// Output: {"listening": url}. Ends when stdin closes.

import { createServer } from "node:http";
import express from "express";
import { paymentMiddleware } from "x402-express";
import { env, exitWithParent, listen } from "./lib.mjs";

exitWithParent();
const app = express();
app.use(
  paymentMiddleware(
    env("PAY_TO"),
    {
      "GET /weather": {
        price: {
          amount: env("PRICE"),
          asset: {
            address: env("ASSET"),
            decimals: Number(env("ASSET_DECIMALS")),
            eip712: { name: env("ASSET_NAME"), version: env("ASSET_VERSION") },
          },
        },
        network: "base-sepolia",
        config: { description: "Current weather", mimeType: "application/json" },
      },
    },
    { url: env("FACILITATOR_URL") },
  ),
);
app.get("/weather", (req, res) => res.json({ city: "Lisbon", tempC: 21, sky: "clear" }));
await listen(createServer(app));
