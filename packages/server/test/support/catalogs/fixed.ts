// The same catalog once fixed: `plan` is optional and `coupon` is declared.
import { defineCatalog, t } from '@tally/core';

export default defineCatalog({
  signup_completed: { properties: { plan: t.string(), source: t.string(), coupon: t.string() } },
});
