#!/usr/bin/env bash
# Validates grafana/dashboards/*.json against Grafana's own dashboard schema, without Grafana:
#
#   scripts/check-dashboards.sh [DASHBOARD_DIR]     (default: grafana/dashboards)
#
# Grafana publishes the schema of its dashboard JSON (the classic model that file
# provisioning reads) as TypeScript types in the npm package @grafana/schema, generated
# from its CUE kinds; there is no JSON Schema file. So each dashboard becomes a TypeScript
# constant checked by `tsc --noEmit --strict` against:
#
#   - `Dashboard` (templating, annotations, panels, field config, thresholds, mappings,
#     links, time settings: required fields present, every known field of the right type
#     and enum value);
#   - for timeseries, stat, table, bargauge and state-timeline panels, the plugin's own
#     `Options` and (where it has one) `FieldConfig` of `fieldConfig.defaults.custom`.
#
# Fields the schema does not describe are allowed (Grafana ignores or migrates them);
# enum-typed fields are compared by value, as JSON carries them. The package version
# follows the Grafana image of docker-compose.yml.
#
# Needs node and npm (scripts/install-deps.sh installs them). @grafana/schema and
# TypeScript are installed, at pinned versions, into .tools/npm-grafana the first time
# (the only step that needs the npm registry); later runs take a few seconds. Exit code:
# 0 only if every dashboard validates.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCHEMA_VERSION=13.2.3
TYPESCRIPT_VERSION=5.9.3
NPM_DIR="$ROOT/.tools/npm-grafana"
DIR="$(cd "${1:-grafana/dashboards}" && pwd)"

log() { echo "[check-dashboards] $*"; }
die() { echo "[check-dashboards] ERROR: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found (run scripts/install-deps.sh)"

installed_version() { # PACKAGE
    node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
        "$NPM_DIR/node_modules/$1/package.json"
}

if [[ "$(installed_version @grafana/schema)" != "$SCHEMA_VERSION" ]] \
    || [[ "$(installed_version typescript)" != "$TYPESCRIPT_VERSION" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (run scripts/install-deps.sh)"
    log "installing @grafana/schema@$SCHEMA_VERSION typescript@$TYPESCRIPT_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --save-exact --no-audit --no-fund --ignore-scripts \
        --loglevel=error "@grafana/schema@$SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION" \
        >/dev/null
fi

WORK="$(mktemp -d "$NPM_DIR/check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The generator: one constant per dashboard, and per panel of a known plugin its options
# and custom field config, each assigned to its schema type. A constant keeps its literal
# types (`as const`), so `"type": "dashboards"` is checked against the union of link types;
# the assignment is not an object literal, so fields the schema does not know are allowed.
cat >"$WORK/gen.mjs" <<'EOF'
import fs from 'node:fs';
import path from 'node:path';
const [dir, out] = process.argv.slice(2);
const files = fs.readdirSync(dir).filter(f => f.endsWith('.json')).sort();
if (files.length === 0) throw new Error(`no dashboards in ${dir}`);
// Panel type → schema module of its plugin, and whether it has a custom FieldConfig.
const plugins = {
  timeseries: ['timeseries', 'TimeSeriesPanelCfg', true],
  stat: ['stat', 'StatPanelCfg', false],
  table: ['table', 'TablePanelCfg', true],
  bargauge: ['bargauge', 'BarGaugePanelCfg', false],
  'state-timeline': ['statetimeline', 'StateTimelinePanelCfg', true],
};
const id = mod => mod.replace('PanelCfg', '');
let ts = `import type { Dashboard } from '@grafana/schema';\n`;
for (const [dirName, mod, hasField] of Object.values(plugins)) {
  ts += `import type { Options as ${id(mod)}Options${hasField ? `, FieldConfig as ${id(mod)}FieldConfig` : ''} }` +
    ` from '@grafana/schema/dist/esm/raw/composable/${dirName}/panelcfg/x/${mod}_types.gen';\n`;
}
ts += `
// JSON holds the values of the schema's enums: compare enum members by value.
type Lit<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Lit<U>> : T extends object ? { [K in keyof T]: Lit<T[K]> } : T;
type Mutable<T> = T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;
`;
let n = 0;
const check = (where, value, type) => {
  n += 1;
  ts += `\n// ${where}\nconst v${n} = ${JSON.stringify(value, null, 1)} as const;\n` +
    `export const c${n}: Lit<${type}> = v${n} as Mutable<typeof v${n}>;\n`;
};
const walk = (panels, f) => (panels || []).forEach(p => { f(p); walk(p.panels, f); });
for (const f of files) {
  const d = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  check(f, d, 'Dashboard');
  walk(d.panels, p => {
    const plugin = plugins[p.type];
    if (!plugin) return;
    const where = `${f} / ${String(p.title).replace(/[\r\n]/g, ' ')}`;
    if (p.options) check(`${where}: options`, p.options, `${id(plugin[1])}Options`);
    const custom = p.fieldConfig?.defaults?.custom;
    if (plugin[2] && custom) check(`${where}: fieldConfig.defaults.custom`, custom, `${id(plugin[1])}FieldConfig`);
  });
}
fs.writeFileSync(path.join(out, 'check.ts'), ts);
console.log(`${files.length} dashboards (${files.join(', ')}), ${n} objects`);
EOF

cat >"$WORK/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "skipLibCheck": true,
    "types": []
  },
  "files": ["check.ts"]
}
EOF

summary="$(node "$WORK/gen.mjs" "$DIR" "$WORK")"
log "@grafana/schema $SCHEMA_VERSION: $summary"
if node "$NPM_DIR/node_modules/typescript/bin/tsc" -p "$WORK/tsconfig.json" --pretty false \
    >"$WORK/errors.txt" 2>&1; then
    log "every dashboard validates"
else
    # Name the object (the comment above each constant) next to each error.
    node -e '
        const fs = require("fs");
        const [ts, errs] = [fs.readFileSync(process.argv[1], "utf8").split("\n"),
                            fs.readFileSync(process.argv[2], "utf8")];
        for (const line of errs.split("\n")) {
            const m = /check\.ts\((\d+),\d+\): /.exec(line);
            if (!m) { if (line.trim()) console.error("    " + line.trim().slice(0, 400)); continue; }
            let i = Number(m[1]) - 1;
            while (i > 0 && !ts[i].startsWith("// ")) i -= 1;
            console.error(`${ts[i].slice(3)}:\n  ${line.slice(m.index + m[0].length).slice(0, 400)}`);
        }' "$WORK/check.ts" "$WORK/errors.txt"
    die "dashboards do not match @grafana/schema $SCHEMA_VERSION"
fi
