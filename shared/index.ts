/**
 * `eddy/shared`: what the client and the edge must agree on, in one place: the schema and its YAML
 * form, validators, the hybrid logical clock, the protocol's schemas and version, the merge rules,
 * digests and errors. Isomorphic: nothing here touches the DOM or Node, and nothing here imports the
 * rest of the repository.
 */
export * from './digest.ts'
export * from './duration.ts'
export * from './errors.ts'
export * from './hlc.ts'
export * from './protocol.ts'
export * from './reconcile.ts'
export * from './schema.ts'
export * from './schema-yaml.ts'
export * from './validators.ts'
