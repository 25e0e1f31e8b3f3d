/** Writes client/operations.ts from the hub's OpenAPI document (`npm run generate:client`). */
import { writeFile } from 'node:fs/promises';
import { openApiDocument } from '../hub/http/openapi-document.js';
import { renderOperations } from '../hub/http/openapi-operations.js';

const target = new URL('../client/operations.ts', import.meta.url);
await writeFile(target, renderOperations(await openApiDocument()));
process.stdout.write(`wrote ${target.pathname}\n`);
