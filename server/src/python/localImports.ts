// Whether the imports of a program region bind names only inside functions of that region: then an edit of the
// region cannot change how names resolve outside it (the incremental analysis re-analyses the whole region).
import { firstTop, nextTop, type Program } from './forest';

const IMPORTS = ['import_statement', 'import_from_statement', 'future_import_statement'];

/** True when every import statement in the top-level statements overlapping [lo, hi) lies inside a function
 *  (its bindings are that function's locals, as names.ts scopes them). False for a module- or class-level import,
 *  including one inside an ERROR node outside any function. */
export function importsOnlyInFunctions(tree: Program, lo: number, hi: number): boolean {
  for (let n = firstTop(tree, lo); n && n.startIndex < hi; n = nextTop(tree, n)) {
    if (IMPORTS.includes(n.type)) return false;
    for (const imp of n.descendantsOfType(IMPORTS)) {
      let inFunction = false;
      for (let p = imp?.parent; p && p.type !== 'module'; p = p.parent) {
        if (p.type === 'function_definition' || p.type === 'lambda') { inFunction = true; break; }
        if (p.type === 'class_definition') break;
      }
      if (!inFunction) return false;
    }
  }
  return true;
}
