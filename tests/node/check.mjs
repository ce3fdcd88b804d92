// Reads the published contract as a Node publisher would: strict Ajv2020 (ajv's defaults) with
// ajv-formats, and the AsyncAPI parser that the AsyncAPI CLI's `validate` uses.
//
//   node check.mjs < plan.json > report.json
//
// plan: {"schemas": [paths], "asyncapi": path | null,
//        "cases": [{"schema": "$id", "instance": any}]}
// report: {"warnings": [...], "compiled": [$id...], "verdicts": [{"valid", "errors"}],
//          "asyncapi": [diagnostics]}
import fs from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Parser } from '@asyncapi/parser';

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
const warnings = [];
const remember = (...args) => warnings.push(args.map(String).join(' '));
// ajv's defaults (strict mode) with a logger that keeps what strict mode would only print.
const ajv = new Ajv2020({ allErrors: true, logger: { log() {}, warn: remember, error: remember } });
addFormats(ajv);

const compiled = [];
for (const path of plan.schemas) {
  const schema = JSON.parse(fs.readFileSync(path, 'utf8'));
  ajv.addSchema(schema);
  ajv.getSchema(schema.$id); // compiles now: a strict-mode error throws here
  compiled.push(schema.$id);
}

const verdicts = plan.cases.map(({ schema, instance }) => {
  const validate = ajv.getSchema(schema);
  const valid = validate(instance);
  return {
    valid,
    errors: (validate.errors || []).map((e) => `${e.instancePath || '/'} ${e.message}`),
  };
});

let asyncapi = null;
if (plan.asyncapi) {
  const { diagnostics } = await new Parser().parse(fs.readFileSync(plan.asyncapi, 'utf8'));
  asyncapi = diagnostics.map((d) => ({
    severity: d.severity,
    code: d.code,
    message: d.message,
    path: d.path.join('/'),
  }));
}

process.stdout.write(JSON.stringify({ warnings, compiled, verdicts, asyncapi }));
