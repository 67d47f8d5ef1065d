#!/usr/bin/env bash
# Lints docker-compose.yml without Docker (scripts/test.sh runs it after the fmt step):
#
#   1. dclint validates the file against the Compose specification's JSON schema and
#      applies the rules of .dclintrc.yaml (which says why a rule is off); a warning fails
#      as an error does.
#   2. Every image the stack uses is pinned and comes from a registry that serves it:
#      each service's `image:` (x- anchors merged, as compose does) and the FROM lines of
#      the Dockerfiles the file builds must name a tag other than `latest`, or a digest,
#      and no image may come from a Docker Hub repository Docker Hub no longer serves
#      (`minio/*`, removed in September 2026: MinIO is on quay.io or built from source).
#
#   scripts/lint-compose.sh [COMPOSE_FILE]     (default: docker-compose.yml)
#
# Needs node and npm (scripts/install-deps.sh installs them). dclint and the YAML parser
# of step 2 are installed, at pinned versions, into .tools/npm the first time (the only
# step that needs the npm registry); later runs take about a second. Exit code: 0 only if
# both steps pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# dclint 3.x needs Node >= 20.19; 2.2.2 runs on Debian 12's Node 18.20.
DCLINT_VERSION=2.2.2
YAML_VERSION=2.9.1
NPM_DIR="$ROOT/.tools/npm"
CONFIG="$ROOT/.dclintrc.yaml"
COMPOSE_FILE="${1:-docker-compose.yml}"

log() { echo "[lint-compose] $*"; }
die() { echo "[lint-compose] ERROR: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found (run scripts/install-deps.sh)"
[[ -f "$COMPOSE_FILE" ]] || die "$COMPOSE_FILE not found"

installed_version() { # PACKAGE
    node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
        "$NPM_DIR/node_modules/$1/package.json"
}

if [[ "$(installed_version dclint)" != "$DCLINT_VERSION" ]] \
    || [[ "$(installed_version yaml)" != "$YAML_VERSION" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (run scripts/install-deps.sh)"
    log "installing dclint@$DCLINT_VERSION yaml@$YAML_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --save-exact --no-audit --no-fund --ignore-scripts \
        --loglevel=error "dclint@$DCLINT_VERSION" "yaml@$YAML_VERSION" >/dev/null
fi

# Both steps run, so one run reports every problem.
FAILED=()

log "dclint $DCLINT_VERSION: $COMPOSE_FILE (Compose specification schema, $(basename "$CONFIG"))"
if node "$NPM_DIR/node_modules/dclint/bin/dclint.cjs" --config "$CONFIG" --max-warnings 0 \
    --color=false "$COMPOSE_FILE" | sed '/^$/d'; then
    log "dclint: no problems"
else
    FAILED+=(dclint)
fi

log "image pins: $COMPOSE_FILE and the Dockerfiles it builds"
node - "$NPM_DIR/node_modules/yaml" "$COMPOSE_FILE" <<'JS' || FAILED+=("image pins")
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const [yamlModule, composeFile] = process.argv.slice(2);
const YAML = require(yamlModule);

// Docker Hub repositories Docker Hub no longer serves, with where to go instead.
const GONE_FROM_DOCKER_HUB = [
  ['minio/', 'use quay.io/minio/... or build MinIO from source (docker/minio/Dockerfile)'],
];
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

// Splits an image reference the way Docker does: [REGISTRY/]PATH[:TAG][@DIGEST]; the
// first component is a registry only if it has a dot or a port, or is localhost.
function parseReference(ref) {
  let rest = ref;
  let digest = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let registry = 'docker.io';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag = null;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (DOCKER_HUB.has(registry)) {
    registry = 'docker.io';
    if (!rest.includes('/')) rest = `library/${rest}`;
  }
  return { registry, path: rest, tag, digest };
}

function referenceProblems(ref) {
  if (ref.includes('$')) {
    return [`\`${ref}\` is interpolated, so its pin cannot be checked; write it out`];
  }
  const { registry, path: repo, tag, digest } = parseReference(ref);
  const problems = [];
  if (digest !== null) {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      problems.push(`\`${ref}\`: \`${digest}\` is not a sha256 digest`);
    }
  } else if (tag === null || tag === '') {
    problems.push(`\`${ref}\` has no tag: pin a version tag or a digest`);
  } else if (tag === 'latest') {
    problems.push(`\`${ref}\` uses \`latest\`: pin a version tag or a digest`);
  }
  if (registry === 'docker.io') {
    for (const [prefix, instead] of GONE_FROM_DOCKER_HUB) {
      if (repo.startsWith(prefix)) {
        problems.push(`\`${ref}\` is on Docker Hub, which no longer serves ${prefix}*: ${instead}`);
      }
    }
  }
  return problems;
}

// FROM lines of a Dockerfile: [--flag...] IMAGE [AS NAME]; stages named earlier and
// `scratch` are not images to pull.
function dockerfileImages(file) {
  const stages = new Set(['scratch']);
  const images = [];
  let instruction = '';
  let start = 0;
  fs.readFileSync(file, 'utf8').split(/\r?\n/).forEach((line, i) => {
    if (instruction === '') start = i + 1;
    // A trailing backslash continues the instruction on the next line.
    if (line.endsWith('\\')) {
      instruction += `${line.slice(0, -1)} `;
      return;
    }
    instruction += line;
    const m = instruction.match(/^\s*FROM\s+(.*)$/i);
    instruction = '';
    if (!m) return;
    const words = m[1].trim().split(/\s+/).filter((w) => !w.startsWith('--'));
    const [image, as, name] = words;
    if (image && !stages.has(image.toLowerCase())) images.push({ image, line: start });
    if (as && as.toLowerCase() === 'as' && name) stages.add(name.toLowerCase());
  });
  return images;
}

const compose = YAML.parse(fs.readFileSync(composeFile, 'utf8'), { merge: true });
const baseDir = path.dirname(path.resolve(composeFile));
const problems = [];
const checked = new Map(); // reference -> where it is used
const use = (ref, where) => {
  checked.set(ref, [...(checked.get(ref) || []), where]);
  for (const p of referenceProblems(ref)) problems.push(`${where}: ${p}`);
};

const dockerfiles = new Set();
for (const [name, svc] of Object.entries((compose && compose.services) || {})) {
  if (!svc || typeof svc !== 'object') continue;
  if (svc.image !== undefined) {
    if (typeof svc.image === 'string') use(svc.image, `service \`${name}\``);
    else problems.push(`service \`${name}\`: image is not a string`);
  }
  if (svc.build !== undefined) {
    const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
    const context = path.resolve(baseDir, build.context || '.');
    dockerfiles.add(path.resolve(context, build.dockerfile || 'Dockerfile'));
  } else if (svc.image === undefined) {
    problems.push(`service \`${name}\`: neither image nor build`);
  }
}
for (const file of dockerfiles) {
  const rel = path.relative(process.cwd(), file);
  if (!fs.existsSync(file)) {
    problems.push(`${rel}: missing (a service builds it)`);
    continue;
  }
  for (const { image, line } of dockerfileImages(file)) use(image, `${rel}:${line} FROM`);
}

for (const [ref, where] of [...checked].sort(([a], [b]) => a.localeCompare(b))) {
  console.log(`  ${ref}  (${[...new Set(where)].join(', ')})`);
}
if (problems.length > 0) {
  console.error(`[lint-compose] ${problems.length} image problem(s):`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}
console.log(`[lint-compose] image pins: ${checked.size} references, all pinned`);
JS

if [[ ${#FAILED[@]} -gt 0 ]]; then
    die "failed: $(printf '%s; ' "${FAILED[@]}" | sed 's/; $//')"
fi
log "PASSED"
