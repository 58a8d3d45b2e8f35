/** The mesh layer: VirtualService model (pure), state annotations, the RouteStore port and its adapters. */
export * from './brake.js';
export * from './errors.js';
export * from './gateway.js';
export * from './jsonpatch.js';
export * from './kubernetes.js';
export * from './retry.js';
export * from './route.js';
export * from './state.js';
export * from './store.js';
export * from './virtualservice.js';
