/**
 * A device's labels, and with the admin scope an editor: remove labels and add or change
 * key=value pairs, then "Save labels" sends them in one PATCH. The hub checks keys and values;
 * what it refuses is shown as it says it.
 */
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import type { Device, DeviceLabelsUpdate } from '../../../shared/api/devices.js';
import { ErrorMessage } from './error-message.js';
import './label-editor.css';

type Labels = Record<string, string>;

export function LabelList({ labels }: { labels: Labels }) {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <p class="muted">No labels.</p>;
  return (
    <ul class="labels" aria-label="Labels">
      {entries.map(([k, v]) => (
        <li key={k}>
          <code>
            {k}={v}
          </code>
        </li>
      ))}
    </ul>
  );
}

export function LabelEditor({ device, onSaved }: { device: Pick<Device, 'id' | 'labels'>; onSaved: (device: Device) => void }) {
  const [set, setSet] = useState<Labels>({});
  const [remove, setRemove] = useState<string[]>([]);
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [error, setError] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  const shown = { ...device.labels, ...set };
  const keys = Object.keys(shown).sort((a, b) => a.localeCompare(b));
  const changed = remove.length > 0 || Object.keys(set).length > 0;

  const add = (e: Event) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) return setError(new Error('Enter the label’s key (and its value).'));
    setSaved(false);
    setSet({ ...set, [k]: value.trim() });
    setRemove(remove.filter((r) => r !== k));
    setKey('');
    setValue('');
    setError(undefined);
  };

  const toggle = (k: string) => {
    setSaved(false);
    if (remove.includes(k)) return setRemove(remove.filter((r) => r !== k));
    // Removing drops a change not saved yet; a label the device does not have needs nothing more.
    const rest = { ...set };
    delete rest[k];
    setSet(rest);
    if (Object.hasOwn(device.labels, k)) setRemove([...remove, k]);
  };

  const save = async () => {
    setBusy(true);
    setSaved(false);
    setError(undefined);
    const body: DeviceLabelsUpdate = {};
    if (Object.keys(set).length) body.set = set;
    if (remove.length) body.remove = remove;
    try {
      const updated = await api.patch<Device>(`/api/v1/devices/${seg(device.id)}/labels`, body);
      setSet({});
      setRemove([]);
      setSaved(true);
      onSaved(updated);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="label-editor">
      <div class="table-wrap">
        <table>
          <caption>Labels of {device.id}</caption>
          <thead>
            <tr>
              <th>Key</th>
              <th>Value</th>
              <th>Change</th>
            </tr>
          </thead>
          <tbody>
            {keys.length === 0 ? (
              <tr>
                <td colSpan={3} class="muted">
                  No labels.
                </td>
              </tr>
            ) : null}
            {keys.map((k) => {
              const removing = remove.includes(k);
              const pending = Object.hasOwn(set, k) && set[k] !== device.labels[k];
              return (
                <tr key={k} class={removing ? 'removing' : pending ? 'pending' : undefined}>
                  <td>
                    <code>{k}</code>
                  </td>
                  <td>
                    <code>{shown[k]}</code>
                    {pending ? <span class="muted"> (not saved)</span> : null}
                    {removing ? <span class="muted"> (removed when saved)</span> : null}
                  </td>
                  <td>
                    <button type="button" class="secondary" onClick={() => toggle(k)} aria-label={`${removing ? 'Keep' : 'Remove'} label ${k}`}>
                      {removing ? 'Keep' : 'Remove'}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <form class="filters" onSubmit={add}>
        <label class="inline" for="label-key">
          Key
          <input id="label-key" value={key} autocomplete="off" spellcheck={false} onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label class="inline" for="label-value">
          Value
          <input id="label-value" value={value} autocomplete="off" spellcheck={false} onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="secondary">
          Add label
        </button>
        <button type="button" onClick={save} disabled={!changed || busy}>
          {busy ? 'Saving…' : 'Save labels'}
        </button>
      </form>
      {/* Always in the page, so a screen reader hears it when the text appears. */}
      <p class="saved" role="status">
        {saved ? 'Labels saved' : ''}
      </p>
      <ErrorMessage error={error} what="The labels were not saved" />
    </div>
  );
}
