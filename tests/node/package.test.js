'use strict';
// How claw-llm-client ships: one version everywhere (the workspace Cargo.toml), one npm
// platform package per prebuilt target, a loader that finds the platform package or says
// exactly what is missing, and a prepack check that refuses to pack a package without its binary.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT } = require('./helpers');

const readJson = (...p) => JSON.parse(fs.readFileSync(path.join(ROOT, ...p), 'utf8'));
const PKG = readJson('package.json');
const PLATFORMS = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
};

function workspaceVersion() {
  const cargo = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const section = cargo.split('[workspace.package]')[1].split('\n[')[0];
  return section.match(/^version = "([^"]+)"$/m)[1];
}

function hostPlatform() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    return `linux-${arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`;
}

/** The development binary scripts/setup builds (bindings-node/claw-llm.<platform>.node). */
function devBinary() {
  const file = path.join(ROOT, 'bindings-node', `claw-llm.${hostPlatform()}.node`);
  assert.ok(fs.existsSync(file), `${file} is missing: run \`npm run build:debug\``);
  return file;
}

/** A copy of the JS layer alone, as an installed claw-llm-client without a local binary. */
function installedCopy(dir) {
  const pkgDir = path.join(dir, 'node_modules', 'claw-llm-client');
  fs.mkdirSync(path.join(pkgDir, 'bindings-node'), { recursive: true });
  for (const f of ['index.js', 'index.mjs', 'index.d.ts']) {
    fs.copyFileSync(path.join(ROOT, 'bindings-node', f), path.join(pkgDir, 'bindings-node', f));
  }
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({ ...PKG, scripts: {} }));
  return pkgDir;
}

function requireIn(dir, code, env = {}) {
  const clean = { ...process.env, ...env };
  delete clean.CLAW_LLM_NATIVE;
  return spawnSync(process.execPath, ['-e', code], { cwd: dir, env: clean, encoding: 'utf8', timeout: 20_000 });
}

test('one version: the workspace Cargo.toml, package.json, every platform package, pyproject', () => {
  const version = workspaceVersion();
  assert.equal(PKG.version, version, 'package.json');
  const targets = PKG.napi.targets;
  assert.deepEqual([...targets].sort(), Object.keys(PLATFORMS).sort(), 'napi.targets');
  const expectedDeps = {};
  for (const target of targets) {
    const platform = PLATFORMS[target];
    const p = readJson('npm', platform, 'package.json');
    assert.equal(p.name, `claw-llm-client-${platform}`);
    assert.equal(p.version, version, `npm/${platform}/package.json`);
    assert.equal(p.main, `claw-llm.${platform}.node`);
    assert.ok(p.files.includes(p.main) && p.files.includes('LICENSE'), `npm/${platform} files`);
    expectedDeps[p.name] = version;
  }
  // The repository's package.json names no platform packages (npm ci cannot lock packages that
  // are not on the registry); a package made from it does: prepack writes them, like napi prepublish.
  assert.equal(PKG.optionalDependencies, undefined, 'no optionalDependencies in the repository');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-deps-'));
  try {
    packagingCopy(dir);
    assert.deepEqual(readJsonAt(dir, 'package.json').optionalDependencies, expectedDeps, 'written optionalDependencies');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const pyproject = fs.readFileSync(path.join(ROOT, 'pyproject.toml'), 'utf8');
  assert.match(pyproject, /^dynamic = \["version"\]$/m, 'pyproject.toml takes the version from Cargo.toml');
  assert.doesNotMatch(pyproject.split('[project.urls]')[0], /^version\s*=/m, 'no second version in pyproject.toml');
  for (const crate of ['core', 'bindings-node', 'bindings-python']) {
    const manifest = fs.readFileSync(path.join(ROOT, crate, 'Cargo.toml'), 'utf8');
    assert.match(manifest, /^version\.workspace = true$/m, `${crate}/Cargo.toml`);
  }
  const changelog = fs.readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8');
  assert.match(changelog, new RegExp(`^## ${version.replace(/\./g, '\\.')}$`, 'm'), 'CHANGELOG.md');
});

test('the loader and the platform packages list the same platforms', () => {
  const src = fs.readFileSync(path.join(ROOT, 'bindings-node', 'index.js'), 'utf8');
  const list = src.match(/const PLATFORMS = \[([^\]]*)\]/)[1].match(/'[^']+'/g).map((s) => s.slice(1, -1));
  assert.deepEqual(list.sort(), Object.values(PLATFORMS).sort());
});

test('the main package ships the JS layer, no binary', () => {
  assert.deepEqual(PKG.files.filter((f) => f.endsWith('.node')), []);
  assert.equal(PKG.scripts.prepack, 'node npm/prepack.js');
  assert.match(PKG.scripts.prepublishOnly, /^napi prepublish /);
});

test('loader: an unsupported platform throws one error naming it, the package and the list', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-loader-'));
  try {
    installedCopy(dir);
    const r = requireIn(
      dir,
      "Object.defineProperty(process, 'platform', { value: 'freebsd' });" +
        "try { require('claw-llm-client'); } catch (e) { console.log(e.message); process.exit(3); }",
    );
    assert.equal(r.status, 3, r.stderr);
    const msg = r.stdout.trim();
    assert.match(msg, /no native binary for platform freebsd-/);
    assert.match(msg, /claw-llm-client-freebsd-/);
    assert.match(msg, /Supported platforms: linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, darwin-x64, darwin-arm64, win32-x64-msvc$/);
    assert.match(msg, /CLAW_LLM_NATIVE/);
    assert.equal(msg.split('\n').length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('loader: a supported platform without its package names the package to install', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-loader-'));
  try {
    installedCopy(dir);
    const r = requireIn(dir, "try { require('claw-llm-client'); } catch (e) { console.log(e.message); process.exit(3); }");
    assert.equal(r.status, 3, r.stderr);
    const pkg = `claw-llm-client-${hostPlatform()}`;
    assert.match(r.stdout, new RegExp(`the package ${pkg} is not installed`));
    assert.match(r.stdout, new RegExp(`npm install ${pkg}`));
    assert.doesNotMatch(r.stdout, /npm run build/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('loader: the platform package in node_modules is found and loaded', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-loader-'));
  try {
    installedCopy(dir);
    const platform = hostPlatform();
    const platformDir = path.join(dir, 'node_modules', `claw-llm-client-${platform}`);
    fs.mkdirSync(platformDir, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'npm', platform, 'package.json'), path.join(platformDir, 'package.json'));
    fs.copyFileSync(devBinary(), path.join(platformDir, `claw-llm.${platform}.node`));
    const r = requireIn(
      dir,
      "const m = require('claw-llm-client'); console.log(typeof m.callSpecificModel, typeof m.createClient);",
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'function function');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('loader: a platform binary that fails to load is reported as such, with its cause', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-loader-'));
  try {
    installedCopy(dir);
    const platform = hostPlatform();
    const platformDir = path.join(dir, 'node_modules', `claw-llm-client-${platform}`);
    fs.mkdirSync(platformDir, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'npm', platform, 'package.json'), path.join(platformDir, 'package.json'));
    fs.writeFileSync(path.join(platformDir, `claw-llm.${platform}.node`), 'not a shared library');
    const r = requireIn(dir, "try { require('claw-llm-client'); } catch (e) { console.log(e.message); process.exit(3); }");
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stdout, new RegExp(`the native binary in claw-llm-client-${platform} failed to load: `));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A scratch copy of the packaging files: package.json, npm/ (no binaries) and LICENSE. */
function packagingCopy(dir) {
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(dir, 'LICENSE'));
  fs.mkdirSync(path.join(dir, 'npm'));
  fs.copyFileSync(path.join(ROOT, 'npm', 'prepack.js'), path.join(dir, 'npm', 'prepack.js'));
  for (const platform of Object.values(PLATFORMS)) {
    fs.mkdirSync(path.join(dir, 'npm', platform));
    fs.copyFileSync(path.join(ROOT, 'npm', platform, 'package.json'), path.join(dir, 'npm', platform, 'package.json'));
  }
  const r = spawnSync(process.execPath, [path.join(dir, 'npm', 'prepack.js'), '--write-optional-deps'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const readJsonAt = (dir, file) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));

const prepack = (cwd, dir, env = {}) =>
  spawnSync(process.execPath, [path.join(dir, 'npm', 'prepack.js')], {
    cwd,
    env: { ...process.env, CLAW_LLM_PACK_ALL: '', ...env },
    encoding: 'utf8',
  });

test('prepack refuses a package whose platform binary is missing, and passes once it is there', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-prepack-'));
  try {
    packagingCopy(dir);
    const platform = hostPlatform();
    const platformDir = path.join(dir, 'npm', platform);

    let r = prepack(platformDir, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`claw-llm-client-${platform}: refusing to pack: claw-llm\\.${platform}\\.node is missing`));
    r = prepack(dir, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`claw-llm-client: refusing to pack: the ${platform} binary npm/${platform}/claw-llm\\.${platform}\\.node is missing`));

    fs.writeFileSync(path.join(platformDir, `claw-llm.${platform}.node`), 'binary');
    r = prepack(platformDir, dir);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(platformDir, 'LICENSE')), 'LICENSE copied into the platform package');
    r = prepack(dir, dir);
    assert.equal(r.status, 0, r.stderr);
    r = prepack(dir, dir, { CLAW_LLM_PACK_ALL: '1' });
    assert.equal(r.status, 1, 'a release needs every platform binary');
    assert.match(r.stderr, /refusing to pack: the \S+ binary npm\/\S+ is missing/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('prepack refuses optional dependencies that disagree with the version', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-prepack-'));
  try {
    packagingCopy(dir);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    pkg.optionalDependencies['claw-llm-client-darwin-arm64'] = '0.0.1';
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
    const r = prepack(dir, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /claw-llm-client-darwin-arm64: npm\/darwin-arm64 is claw-llm-client-darwin-arm64@\S+, optionalDependencies ask for 0\.0\.1/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('prepack refuses a main package without its platform packages as optionalDependencies', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-prepack-'));
  try {
    packagingCopy(dir);
    const pkg = readJsonAt(dir, 'package.json');
    delete pkg.optionalDependencies['claw-llm-client-win32-x64-msvc'];
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
    let r = prepack(dir, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to pack: optionalDependencies lack the platform package claw-llm-client-win32-x64-msvc/);
    delete pkg.optionalDependencies;
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
    r = prepack(dir, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to pack: package\.json lists no optionalDependencies/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('npm pack --dry-run from the repository refuses: its package.json names no platform packages', { timeout: 60_000 }, () => {
  // scripts/package writes them for the pack (scripts/test-package checks the tarball's list,
  // its files and that it carries no binary); a bare `npm pack` here must not make a package
  // that would install without its binary.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 50_000 });
  assert.notEqual(r.status, 0, 'npm pack must refuse');
  assert.match(r.stderr, /refusing to pack/);
});
