// Filled in by web console part 2.
export function ApiKeys() {
  return null;
}
