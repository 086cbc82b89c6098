// Prints the Failing / Missing / Shared unions of compare.ts, resolved by the type checker.
const path = require('node:path');
const ts = require(require.resolve('typescript', { paths: [path.join(__dirname, '../../web')] }));
const file = path.join(__dirname, 'compare.ts');
const program = ts.createProgram([file], {
  strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'], skipLibCheck: true, types: [],
  typeRoots: [], baseUrl: __dirname, paths: { '@trpc/*': [path.join(__dirname, '../../web/node_modules/@trpc/*')] },
});
const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
for (const d of errors) console.error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
const checker = program.getTypeChecker();
const out = {};
ts.forEachChild(program.getSourceFile(file), (node) => {
  if (ts.isTypeAliasDeclaration(node) && ['Failing', 'Missing', 'Shared'].includes(node.name.text)) {
    const t = checker.getTypeAtLocation(node.name);
    const parts = t.flags & ts.TypeFlags.Never ? [] : t.isUnion() ? t.types : [t];
    out[node.name.text] = parts.map((p) => checker.typeToString(p).replace(/"/g, ''));
  }
});
console.log(JSON.stringify({ errors: errors.length, ...out }));
