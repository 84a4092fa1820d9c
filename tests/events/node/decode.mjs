// Decode a webhook JWT with Kinde's @kinde/webhooks, which verifies it against
// <domain>/.well-known/jwks.json; prints the decoded event as JSON, or null when invalid.
import { decodeWebhook } from "@kinde/webhooks";

const [token, domain] = process.argv.slice(2);
const decoded = await decodeWebhook(token, domain);
process.stdout.write(JSON.stringify(decoded));
