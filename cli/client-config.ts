/**
 * Where the client commands find the hub and which key they use: `--hub` / `--api-key`, then
 * `EDGEML_HUB` / `EDGEML_API_KEY`, then the JSON file named by `--config` or `EDGEML_CONFIG`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { loadConfig, type ConfigSources } from '../shared/config-loader.js';

// No user-info part: a key in the URL would end up in error messages, which quote the hub's URL.
export const HUB_URL_PATTERN = '^https?://[^\\s/@?#]+(?:/[^\\s?#]*)?$';
export const DEFAULT_HUB_URL = 'http://127.0.0.1:8080';

export const ClientConfigSchema = Type.Object(
  {
    hub: Type.String({ pattern: HUB_URL_PATTERN, examples: [DEFAULT_HUB_URL], default: DEFAULT_HUB_URL, description: "the hub's REST API" }),
    // Optional on purpose: the hub's 401 says what is missing better than a config error could.
    apiKey: Type.Optional(Type.String({ description: 'API key (Authorization: Bearer); empty means none' })),
    apiKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'a file holding the API key (keeps it out of the process list and shell history)' })),
    ca: Type.Optional(Type.String({ minLength: 1, description: "PEM CA certificate to trust for the hub's HTTPS and device gateways (`edgeml hub ca` prints the hub's)" })),
  },
  { additionalProperties: false },
);
export type ClientConfig = Static<typeof ClientConfigSchema>;

export const CLIENT_ENV_PREFIX = 'EDGEML_';

export function loadClientConfig(sources: ConfigSources): Readonly<ClientConfig> {
  // EDGEML_ is also the start of every EDGEML_HUB_* and EDGEML_AGENT_* variable.
  return loadConfig({ schema: ClientConfigSchema, envPrefix: CLIENT_ENV_PREFIX, ignoreUnknownEnv: true }, sources);
}
