/** Inside a transaction: from here on, row-level security shows only `tenantId`'s rows. */
import type { SqlClient } from './sql-client.js';

export async function asTenantRole(tx: SqlClient, tenantId: string): Promise<void> {
  await tx.exec('SET LOCAL ROLE tally_tenant');
  await tx.query(`SELECT set_config('tally.tenant_id', $1, true)`, [tenantId]);
}
