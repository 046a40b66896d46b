/**
 * ignorePatterns run on RE2JS (a pure-JavaScript port of RE2): matching takes time linear in the
 * message, whatever the pattern, so `^(a+)+$` against a 10,000-character message cannot freeze a
 * pod the way a backtracking engine (JavaScript's RegExp) does. RE2 has no backreferences and no
 * lookaround; such patterns are rejected when the flow is written, with the engine's reason.
 */
import { RE2JS } from 're2js';

export interface Pattern {
  source: string;
  /** True when the pattern matches anywhere in `text` (like RegExp.prototype.test). */
  test(text: string): boolean;
}

/** Compile a pattern, or throw an Error saying what is wrong and how to fix it. */
export function compilePattern(source: string): Pattern {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    throw new Error(
      `'${source}' is not a pattern flowwarden can run (${(err as Error).message}); ignorePatterns use RE2 syntax: ` +
        'no backreferences (\\1) or lookaround ((?=…), (?<=…)); see https://github.com/google/re2/wiki/Syntax',
      { cause: err },
    );
  }
  return { source, test: (text) => re.matcher(text).find() };
}

/** null when the pattern compiles, else the reason. */
export function patternProblem(source: string): string | null {
  try {
    compilePattern(source);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
