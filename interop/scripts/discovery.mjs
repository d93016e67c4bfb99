// Lists a facilitator's discovery catalog (bazaar) with the TypeScript client of
// @x402/extensions, one page.
//
// Environment: FACILITATOR_URL, and optionally TYPE, LIMIT, OFFSET.
// Output: the DiscoveryResourcesResponse as the client returns it.

import { HTTPFacilitatorClient } from "@x402/core/server";
import { withBazaar } from "@x402/extensions/bazaar";
import { env, out } from "./lib.mjs";

const client = withBazaar(new HTTPFacilitatorClient({ url: env("FACILITATOR_URL") }));
const params = {};
if (process.env.TYPE) params.type = process.env.TYPE;
if (process.env.LIMIT) params.limit = Number(process.env.LIMIT);
if (process.env.OFFSET) params.offset = Number(process.env.OFFSET);
out(await client.extensions.bazaar.listResources(params));
