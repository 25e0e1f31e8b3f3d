/**
 * Where the client commands find the hub and which key they use: `--hub` / `--api-key`, then
 * `EDGEML_HUB` / `EDGEML_API_KEY`, then the JSON file named by `--config` or `EDGEML_CONFIG` or,
 * without one, the selected context (`edgeml context …`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { envName, loadConfig, type ConfigSources } from '../shared/config-loader.js';
import type { HubContext } from './contexts.js';

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

export function loadClientConfig(sources: ConfigSources, context?: HubContext): Readonly<ClientConfig> {
  // EDGEML_ is also the start of every EDGEML_HUB_* and EDGEML_AGENT_* variable.
  const spec = { schema: ClientConfigSchema, envPrefix: CLIENT_ENV_PREFIX, ignoreUnknownEnv: true };
  return loadConfig(spec, context === undefined ? sources : underContext(sources, context));
}

/**
 * A context's settings sit under flags and environment variables, each setting on its own. An
 * explicit config file replaces the context; and a context's key and CA go to its own hub only:
 * when `--hub` or EDGEML_HUB names another hub, the context is not used at all.
 */
function underContext(sources: ConfigSources, context: HubContext): ConfigSources {
  if ((sources.file ?? sources.env[`${CLIENT_ENV_PREFIX}CONFIG`]) !== undefined) return sources;
  const hub = sources.flags.hub ?? sources.env[envName(CLIENT_ENV_PREFIX, 'hub')];
  if (hub !== undefined && hub !== context.hub) return sources;
  const fromContext = Object.entries(context).filter(([key, value]) => value !== undefined && sources.env[envName(CLIENT_ENV_PREFIX, key)] === undefined);
  const given = Object.entries(sources.flags).filter(([, value]) => value !== undefined);
  return { ...sources, flags: Object.fromEntries([...fromContext, ...given]) };
}
