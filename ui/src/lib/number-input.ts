/** What a number field holds: null while it is empty, so the form can say "Enter a number." */
export function readNumber(input: HTMLInputElement): number | null {
  return input.value.trim() === "" ? null : input.valueAsNumber;
}
