export * from './model.js';
export * from './formula.js';
export * from './time.js';
export * from './validate.js';
