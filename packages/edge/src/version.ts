/** Kept equal to package.json's version by a test; stamped on every event as `context.library`. */
export const VERSION = '0.1.0';
