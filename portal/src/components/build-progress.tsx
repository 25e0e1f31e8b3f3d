import type { BuildProgress as Progress } from '../../../shared/api/images.js';
import './build-progress.css';

/**
 * A build's steps as a bar and as words (the bar only repeats the words). The bar's name carries
 * the build id, so each row of the builds list has its own. A build that has not counted its steps
 * yet (0 of 0) reads as 0 of 1: a progressbar's maximum must be above its minimum.
 */
export function BuildProgress({ id, progress }: { id: number; progress: Progress | null }) {
  if (!progress) return <span class="muted">—</span>;
  const { stepsDone, stepsTotal, current } = progress;
  const max = Math.max(1, stepsTotal);
  const now = Math.min(stepsDone, max);
  const percent = Math.round((now / max) * 100);
  return (
    <div class="build-progress">
      <div
        class="progress"
        role="progressbar"
        aria-label={`Steps done in build ${id}`}
        aria-valuemin={0}
        aria-valuemax={max}
        aria-valuenow={now}
        aria-valuetext={`${stepsDone} of ${stepsTotal} steps`}
      >
        <span style={{ width: `${percent}%` }} />
      </div>
      <span>
        {stepsDone}/{stepsTotal} steps
      </span>
      {current ? <span class="muted current">{current}</span> : null}
    </div>
  );
}
