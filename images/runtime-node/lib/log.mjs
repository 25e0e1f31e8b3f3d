// One JSON object per line on stdout: {"level", "time", "msg", ...fields}. Request bodies never go
// in here; callers pass only metadata.

/** @param {(line: string) => void} [write] */
export function createLog(write = (line) => process.stdout.write(`${line}\n`)) {
  const emit = (level) => (msg, fields = {}) => {
    const line = { level, time: new Date().toISOString(), msg };
    for (const [key, value] of Object.entries(fields)) if (!(key in line)) line[key] = value;
    write(JSON.stringify(line));
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error'), fatal: emit('fatal') };
}

/** An error's message for a JSON answer or log line, whatever was thrown. */
export function messageOf(err) {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
