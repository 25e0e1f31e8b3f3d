import type { BuildProgress as Progress } from '../../../shared/api/images.js';

/** A build's steps as a bar and as words (the bar only repeats the words). */
export function BuildProgress({ progress }: { progress: Progress | null }) {
  if (!progress) return <span class="muted">—</span>;
  const { stepsDone, stepsTotal, current } = progress;
  const percent = stepsTotal > 0 ? Math.min(100, Math.round((stepsDone / stepsTotal) * 100)) : 0;
  return (
    <div class="build-progress">
      <div class="progress" role="progressbar" aria-label="Build steps done" aria-valuemin={0} aria-valuemax={stepsTotal} aria-valuenow={stepsDone}>
        <span style={{ width: `${percent}%` }} />
      </div>
      <span>
        {stepsDone}/{stepsTotal} steps
      </span>
      {current ? <span class="muted current">{current}</span> : null}
    </div>
  );
}
