// The TypeScript peer of `quid bench` (scenario 5): GET /weather behind @x402/express, verified
// and settled by the TypeScript facilitator (x402Facilitator from @x402/core with the exact EVM
// scheme of @x402/evm) on quid's devnet through viem over JSON-RPC.
//
// The facilitator runs in this process, as quid's does in the bench: the resource server calls it
// directly instead of over HTTP, so the peer is measured without a network hop quid does not pay
// either. Nothing is logged per request.
//
// The relayer account uses viem's nonce manager: without it viem reads the pending nonce for
// every settlement, and concurrent settlements collide ("nonce too low"). NONCE_MANAGER=0 turns it
// off to show that.
//
// Environment:
//   RPC_URL, CHAIN_ID               the devnet's JSON-RPC URL and chain id
//   PRIVATE_KEY                     the relayer key that pays the settlement gas
//   PAY_TO                          the seller's address
//   ASSET, ASSET_NAME, ASSET_VERSION the token and its EIP-712 domain
//   PRICE                           atomic units per request
//   MAX_TIMEOUT_SECONDS             maxTimeoutSeconds of the route
//   NONCE_MANAGER                   "0" to send without viem's nonce manager (default "1")
//
// Output: {"listening": url, "pid": n}. Ends when stdin closes.

import { createServer } from "node:http";
import express from "express";
import { createWalletClient, http, nonceManager, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme as registerFacilitatorScheme } from "@x402/evm/exact/facilitator";
import { registerExactEvmScheme as registerServerScheme } from "@x402/evm/exact/server";
import { devnetChain, env, exitWithParent } from "./lib.mjs";

exitWithParent();
const chainId = Number(env("CHAIN_ID"));
const network = `eip155:${chainId}`;
const rpcURL = env("RPC_URL");
const useNonceManager = env("NONCE_MANAGER", "1") !== "0";

const account = privateKeyToAccount(env("PRIVATE_KEY"), useNonceManager ? { nonceManager } : undefined);
const client = createWalletClient({
  account,
  chain: devnetChain(chainId, rpcURL),
  transport: http(rpcURL),
  // The devnet mines on demand; viem's default 4 s receipt polling would only add waiting.
  pollingInterval: 50,
}).extend(publicActions);

const facilitator = new x402Facilitator();
registerFacilitatorScheme(facilitator, {
  signer: toFacilitatorEvmSigner({ ...client, address: account.address }, { confirmationTimeoutMs: 30_000 }),
  networks: [network],
});

// The resource server's FacilitatorClient, answered in-process.
const local = {
  verify: (payload, requirements) => facilitator.verify(payload, requirements),
  settle: (payload, requirements) => facilitator.settle(payload, requirements),
  getSupported: async () => facilitator.getSupported(),
};
const server = new x402ResourceServer(local);
registerServerScheme(server, { networks: [network] });

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
      maxTimeoutSeconds: Number(env("MAX_TIMEOUT_SECONDS")),
    },
    description: "Current weather",
    mimeType: "application/json",
  },
};

const app = express();
app.use(paymentMiddleware(routes, server));
app.get("/weather", (req, res) => res.json(weather));

const httpServer = createServer(app);
httpServer.keepAliveTimeout = 60_000;
httpServer.listen(0, "127.0.0.1", () => {
  const { port } = httpServer.address();
  process.stdout.write(JSON.stringify({ listening: `http://127.0.0.1:${port}`, pid: process.pid }) + "\n");
});
