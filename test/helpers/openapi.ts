/**
 * Checks real answers against the OpenAPI document (`GET /v1/openapi.json`): the route must be
 * documented, the status must be one of its documented answers, and a JSON body must validate
 * against that answer's schema (JSON Schema 2020-12, with formats).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';

type Json = Record<string, unknown>;

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export interface DocumentChecker {
  document: Json;
  /** Validates one answer; returns the parsed body (undefined when the answer has none). */
  check(method: string, url: string, res: Response): Promise<unknown>;
  /** The compiled validator of the schema at a JSON pointer into the document. */
  schema(pointer: string): ValidateFunction;
  /** Every `METHOD /template status` checked so far. */
  checked: Set<string>;
}

function pointerEscape(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The document's path template that `path` (no query) matches, e.g. `/v1/conversations/{id}`. */
function templateOf(paths: Json, method: string, path: string): string | undefined {
  const matches = Object.keys(paths).filter((template) => {
    if (!(paths[template] as Json)[method]) return false;
    const re = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
    return re.test(path);
  });
  // A literal segment wins over a parameter (`/contacts/suggestions` over `/contacts/{id}`).
  return matches.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0))[0];
}

export function documentChecker(document: Json): DocumentChecker {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(document, 'openapi');
  const compiled = new Map<string, ValidateFunction>();
  const validator = (pointer: string): ValidateFunction => {
    let fn = compiled.get(pointer);
    if (!fn) {
      fn = ajv.compile({ $ref: `openapi#${pointer}` });
      compiled.set(pointer, fn);
    }
    return fn;
  };
  const paths = document.paths as Json;
  const components = document.components as { responses: Json };
  const checked = new Set<string>();

  return {
    document,
    checked,
    schema: validator,
    async check(method, url, res) {
      const m = method.toLowerCase();
      const path = new URL(url, 'http://x').pathname;
      const template = templateOf(paths, m, path);
      expect(template, `${method} ${path} is documented`).toBeDefined();
      const operation = (paths[template as string] as Json)[m] as { responses: Json };
      let answerPointer = `/paths/${pointerEscape(template as string)}/${m}/responses/${res.status}`;
      let answer = operation.responses[String(res.status)] as Json | undefined;
      expect(answer, `${method} ${template} documents status ${res.status}`).toBeDefined();
      const ref = (answer as Json).$ref;
      if (typeof ref === 'string') {
        const name = ref.split('/').pop() as string;
        answer = components.responses[name] as Json;
        answerPointer = `/components/responses/${name}`;
      }
      checked.add(`${method.toUpperCase()} ${template} ${res.status}`);
      expect(res.headers.get('x-request-id')).toBeTruthy();
      const text = await res.text();
      const content = (answer as Json).content as Json | undefined;
      if (!content) {
        expect(text, `${method} ${template} ${res.status} has no body`).toBe('');
        return undefined;
      }
      const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
      expect(Object.keys(content), `${method} ${template} ${res.status} documents ${type}`).toContain(type);
      const media = content[type] as Json;
      if (!media.schema) return text;
      const body = JSON.parse(text) as unknown;
      const validate = validator(`${answerPointer}/content/${pointerEscape(type)}/schema`);
      if (!validate(body)) {
        throw new Error(
          `${method} ${template} ${res.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 2000)}`,
        );
      }
      return body;
    },
  };
}
