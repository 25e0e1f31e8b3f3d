import type { Image } from '../../../shared/api/images.js';
import { StatusBadge } from './status-badge.js';
import './smoke-checks.css';

/** Each platform's smoke test, in a line: `linux/amd64 passed`; platforms not tested yet say so. */
export function SmokeChecks({ image }: { image: Pick<Image, 'platforms' | 'checks'> }) {
  return (
    <ul class="smoke-checks">
      {Object.keys(image.platforms).map((p) => (
        <li key={p}>
          {p} {image.checks[p] ? <StatusBadge status={image.checks[p].status} /> : <span class="muted">not tested</span>}
        </li>
      ))}
    </ul>
  );
}
