/**
 * `edgeml/client`: a typed client for the hub's REST API. `call(operationId, input)` takes the
 * operations of the hub's OpenAPI document (client/operations.ts, generated from it). Nothing here
 * loads TypeBox at run time: the schema types are imported as types only.
 */
export { HubClient, apiPath, operationPath, type CallOptions, type Download, type HubClientOptions, type Query, type Upload } from './hub-client.js';
export { OPERATIONS, type OperationId, type OperationInput, type OperationResult, type Operations } from './operations.js';
export { EdgemlError, ErrorCodes, isEdgemlError, type ErrorCode } from '../shared/errors.js';
