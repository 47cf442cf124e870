// Read a JSON settings file with errors that name the file and the problem.
// A missing file can map to its own error (e.g. "run init first").
import { readFile } from 'node:fs/promises';
import { BentoError } from '../protocol/errors.js';

export async function readJsonFile(file: string, onMissing?: () => BentoError): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && onMissing) throw onMissing();
    throw new BentoError('CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BentoError('CONFIG_INVALID', `${file}: not valid JSON: ${(err as Error).message}`);
  }
}
