// The legacy v1 client, x402-fetch 1.2, pays one request and reports what happened. v1 names
// networks from a fixed table, so the devnet runs with chain id 84532 and is "base-sepolia" here;
// the wallet client is pointed at the devnet's JSON-RPC so that nothing leaves the machine.
//
// Environment:
//   PRIVATE_KEY   the buyer's key (0x…)
//   URL           the paid resource
//   RPC_URL       the devnet's JSON-RPC URL (chain id 84532)
//   MAX_ATOMIC    the most the client pays, atomic units (x402-fetch's default is 0.1 USDC)
//
// Output: {status, body, paymentResponse, sent:[{method,url,headers}]}.

import { wrapFetchWithPayment, decodeXPaymentResponse } from "x402-fetch";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { env, out, recordingFetch, readBody } from "./lib.mjs";

const rpc = env("RPC_URL");
const wallet = createWalletClient({
  account: privateKeyToAccount(env("PRIVATE_KEY")),
  chain: { ...baseSepolia, rpcUrls: { default: { http: [rpc] } } },
  transport: http(rpc),
}).extend(publicActions);

const sent = [];
const pay = wrapFetchWithPayment(recordingFetch(sent), wallet, BigInt(env("MAX_ATOMIC", "100000")));
const resp = await pay(env("URL"), { method: "GET" });
const header = resp.headers.get("X-PAYMENT-RESPONSE");
out({
  status: resp.status,
  body: await readBody(resp),
  paymentResponse: header ? decodeXPaymentResponse(header) : null,
  sent,
});
