/**
 * The portal copies a few lists of words from shared/api (statuses, phases, stages), because a value
 * import from there would bring the schema library into the browser. This keeps each copy whole: a
 * word added in shared/api and missing here is a compile error naming it.
 */
export function everyMember<T extends string>() {
  return <const L extends readonly T[]>(list: L & ([Exclude<T, L[number]>] extends [never] ? unknown : { missing: Exclude<T, L[number]> })): L => list;
}
