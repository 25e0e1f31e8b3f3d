/**
 * How often pages poll the hub: whole lists change slowly and cost the hub most, so every 5 s; one
 * build or run a person is watching every 2 s (a rollout in flight polls faster, on its own page).
 */
export const LIST_POLL_MS = 5000;
export const DETAIL_POLL_MS = 2000;
