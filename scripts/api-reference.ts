// Writes docs/api-reference.md from the OpenAPI document (`npm run docs:api`).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiDocument } from '../src/api/openapi.js';
import { REFERENCE_FILE, renderApiReference } from '../src/api/reference.js';

// dist/scripts/ → the repository.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const file = path.join(repo, REFERENCE_FILE);
const text = renderApiReference(openApiDocument());
fs.writeFileSync(file, text);
console.log(`wrote ${REFERENCE_FILE} (${text.split('\n').length} lines)`);
