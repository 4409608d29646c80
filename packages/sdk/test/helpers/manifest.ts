import { expect } from 'chai';
import { ManifestError } from '../../src/errors.js';
import { parseManifestText } from '../../src/manifest/load.js';

/** The ManifestError that parsing `text` (as the file `file`) throws; fails if it throws anything else, or nothing. */
export function manifestErrorOf(text: string, file = 'vigil.yaml'): ManifestError {
  try {
    parseManifestText(text, file);
  } catch (err) {
    expect(err).to.be.instanceOf(ManifestError);
    return err as ManifestError;
  }
  throw new Error(`expected a ManifestError for:\n${text}`);
}
