// @x402/fetch (v2) pays one request and reports what happened.
//
// Environment:
//   PRIVATE_KEY   the buyer's key (0x…)
//   URL           the paid resource
//   NETWORK       eip155:<chain id> the client registers for
//   ASSET         the token the spend controls allow (the devnet's is not a default asset)
//   MAX_ATOMIC    per-payment cap on that token, atomic units (default 1000000)
//   PAYMENT_ID    if set, the payment-identifier id the client sends when the server asks for one
//
// Output: {status, body, paymentResponse, sent:[{method,url,headers}]}.

import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { appendPaymentIdentifierToExtensions, PAYMENT_IDENTIFIER } from "@x402/extensions/payment-identifier";
import { privateKeyToAccount } from "viem/accounts";
import { env, out, recordingFetch, readBody } from "./lib.mjs";

const account = privateKeyToAccount(env("PRIVATE_KEY"));
const network = env("NETWORK");

const client = new x402Client();
registerExactEvmScheme(client, { signer: account, networks: [network] });
// Spend controls admit only well-known stablecoins by default; the devnet token must be listed.
client.setSpendControls({
  allowedAssets: [{ network, asset: env("ASSET"), maxAmountPerPayment: env("MAX_ATOMIC", "1000000") }],
});
const paymentId = process.env.PAYMENT_ID;
if (paymentId) {
  client.registerExtension({
    key: PAYMENT_IDENTIFIER,
    enrichPaymentPayload: async (payload) => {
      if (payload.extensions?.[PAYMENT_IDENTIFIER]) {
        appendPaymentIdentifierToExtensions(payload.extensions, paymentId);
      }
      return payload;
    },
  });
}

const sent = [];
const pay = wrapFetchWithPayment(recordingFetch(sent), client);
const resp = await pay(env("URL"), { method: "GET" });
const header = resp.headers.get("PAYMENT-RESPONSE");
out({
  status: resp.status,
  body: await readBody(resp),
  paymentResponse: header ? decodePaymentResponseHeader(header) : null,
  sent,
});
