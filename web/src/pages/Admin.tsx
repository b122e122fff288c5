// Filled in by web console part 2.
export function Admin() {
  return null;
}
