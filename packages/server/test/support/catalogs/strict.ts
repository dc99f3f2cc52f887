// A catalog the quarantine tests send mismatching events to: `plan` is required.
import { defineCatalog, t } from '@tally/core';

export default defineCatalog({
  signup_completed: { properties: { plan: t.string(), source: t.string() }, required: ['plan'] },
});
