/** Human durations in flags and config: `500ms`, `10s`, `5m`, `1h`, `2d`. */
export const DURATION_EXAMPLES = ['500ms', '10s', '5m', '1h'];
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';
