/** Apart from common.ts so that the client can use it without loading TypeBox (CLI start-up). */
export const API_PREFIX = '/api/v1';
