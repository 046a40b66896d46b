/**
 * `npm run lint` (second half): structure rules ESLint does not check, over every .ts file in src/.
 *   - a file has at most 400 lines;
 *   - its leading comment block (comment lines before the first line of code) has at most 10 lines;
 *   - no import circles (static `import`/`export … from`, type-only imports included, as madge counts).
 * Prints one line per finding (file, what, how to fix) and exits 1 if there is any.
 *   node scripts/check-structure.ts [dir …]   # default: src
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const MAX_LINES = 400;
export const MAX_HEADER_LINES = 10;

export interface Finding {
  file: string;
  what: string;
  fix: string;
}

/** Every .ts file under `dir`, relative to the working directory, sorted (stable output). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.ts')) out.push(full);
  }
  return out.sort();
}

/** Lines of comment before the first line of code (a shebang and blank lines do not count). */
export function headerLines(text: string): number {
  let count = 0;
  let inBlock = false;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (i === 0 && line.startsWith('#!')) continue;
    if (inBlock) {
      count++;
      if (line.includes('*/')) {
        inBlock = false;
        // Code after the closing `*/` on the same line ends the header.
        if (line.slice(line.indexOf('*/') + 2).trim() !== '') return count;
      }
      continue;
    }
    if (line === '') continue;
    if (line.startsWith('//')) {
      count++;
      continue;
    }
    if (line.startsWith('/*')) {
      count++;
      const close = line.indexOf('*/', 2);
      if (close < 0) inBlock = true;
      else if (line.slice(close + 2).trim() !== '') return count;
      continue;
    }
    return count;
  }
  return count;
}

/** Relative module specifiers of a file's static imports and re-exports. */
export function importSpecifiers(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const stmt of source.statements) {
    const spec = ts.isImportDeclaration(stmt) || ts.isExportDeclaration(stmt) ? stmt.moduleSpecifier : undefined;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) out.push(spec.text);
  }
  return out;
}

/** A relative specifier to the file it names (`./x.ts`, `./x.js` written for `./x.ts`, `./dir` → index.ts). */
export function resolveImport(from: string, spec: string, exists: (f: string) => boolean): string | undefined {
  const base = path.normalize(path.join(path.dirname(from), spec));
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && exists(c));
}

/**
 * Import circles: one per strongly connected component of the import graph (Tarjan), each given as
 * a shortest path from its first file (sorted) back to itself, so the report is stable.
 */
export function findCircles(graph: Map<string, string[]>): { files: string[]; cycle: string[] }[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = component.length === 1 && (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.sort((a, b) => a[0]!.localeCompare(b[0]!)).map((files) => ({ files, cycle: shortestCycle(graph, files) }));
}

/** Breadth-first from the component's first file back to it, staying inside the component. */
function shortestCycle(graph: Map<string, string[]>, component: string[]): string[] {
  const start = component[0]!;
  const inside = new Set(component);
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of (graph.get(v) ?? []).filter((x) => inside.has(x)).sort()) {
      if (w === start) {
        const cycle = [start];
        for (let u = v; u !== start; u = parent.get(u)!) cycle.splice(1, 0, u);
        return [...cycle, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...component, start]; // unreachable for a strongly connected component
}

export function checkStructure(dirs: string[]): Finding[] {
  const findings: Finding[] = [];
  const files = dirs.flatMap((d) => listFiles(d));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
    if (lines > MAX_LINES) {
      findings.push({
        file,
        what: `${lines} lines (limit ${MAX_LINES})`,
        fix: 'split it by responsibility into files of one job each (see docs/architecture.md for the rooms)',
      });
    }
    const header = headerLines(text);
    if (header > MAX_HEADER_LINES) {
      findings.push({
        file,
        what: `leading comment is ${header} lines (limit ${MAX_HEADER_LINES})`,
        fix: 'keep a few lines saying what the file holds; move the essay to docs/ and the why beside the line it explains',
      });
    }
    const targets = importSpecifiers(file, text)
      .map((spec) => resolveImport(file, spec, (f) => known.has(f) || fs.existsSync(f)))
      .filter((f): f is string => f !== undefined && known.has(f));
    graph.set(file, [...new Set(targets)]);
  }
  for (const { files: circle, cycle } of findCircles(graph)) {
    const others = circle.length > cycle.length - 1 ? ` (one circle of ${circle.length} files: ${circle.join(', ')})` : '';
    findings.push({
      file: cycle[0]!,
      what: `import circle: ${cycle.join(' → ')}${others}`,
      fix: 'move what both sides need into a lower module (e.g. src/types.ts) or pass it in, so imports point one way',
    });
  }
  return findings;
}

if (import.meta.main) {
  const dirs = process.argv.slice(2);
  const findings = checkStructure(dirs.length > 0 ? dirs : ['src']);
  for (const f of findings) console.error(`${f.file}: ${f.what}. Fix: ${f.fix}.`);
  if (findings.length > 0) {
    console.error(`check-structure: ${findings.length} finding(s)`);
    process.exit(1);
  }
  console.log('check-structure: ok');
}
