/**
 * The catalog the server checks events against: the module `--catalog` names (its default export, made
 * with `defineCatalog`), or the built-in product and support-bot catalogs. `tally serve` and the CLI
 * commands that judge events (`tally rejected replay`) load it the same way.
 */
import { pathToFileURL } from 'node:url';
import { type Catalog, mergeCatalogs, productCatalog, supportBotCatalog, TallyConfigError } from '@tally/core';

export async function loadCatalog(path: string | undefined): Promise<Catalog> {
  if (path === undefined) return mergeCatalogs(productCatalog, supportBotCatalog);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (e) {
    throw new TallyConfigError(`TALLY_CATALOG ${path} could not be loaded: ${(e as Error).message}`);
  }
  const catalog = mod.default as Catalog | undefined;
  if (!catalog || typeof catalog.has !== 'function' || typeof catalog.events !== 'object') {
    throw new TallyConfigError(`TALLY_CATALOG ${path} must export default a catalog made with defineCatalog(...)`);
  }
  return catalog;
}
