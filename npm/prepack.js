'use strict';
// `prepack` of claw-llm-client and of every npm/<platform> package: refuses to pack a package
// that would fail at require time.
//   npm/<platform>: its .node file (package.json "main") must be there; LICENSE is copied in.
//   claw-llm-client (repository root): every optional dependency must be an npm/<platform>
//   package of the same version, and the binary of this machine's platform must be built into
//   its npm/<platform> directory (scripts/package does that). CLAW_LLM_PACK_ALL=1 (the release
//   workflow) requires the binaries of every platform.
const fs = require('node:fs');
const path = require('node:path');

const NPM_DIR = __dirname;
const ROOT = path.dirname(NPM_DIR);
const cwd = process.cwd();
const pkg = JSON.parse(fs.readFileSync(path.join(cwd, 'package.json'), 'utf8'));

function fail(message) {
  console.error(`${pkg.name}: refusing to pack: ${message}`);
  process.exit(1);
}

function binaryOf(dir) {
  const platformPkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  return { platformPkg, file: path.join(dir, platformPkg.main) };
}

function hostPlatform() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

if (pkg.napi) {
  const prefix = `${pkg.name}-`;
  const platforms = Object.keys(pkg.optionalDependencies || {}).map((name) => {
    if (!name.startsWith(prefix)) fail(`optional dependency ${name} is not a platform package`);
    const platform = name.slice(prefix.length);
    const dir = path.join(NPM_DIR, platform);
    if (!fs.existsSync(path.join(dir, 'package.json'))) fail(`npm/${platform}/package.json is missing`);
    const { platformPkg, file } = binaryOf(dir);
    const wanted = pkg.optionalDependencies[name];
    if (platformPkg.name !== name || platformPkg.version !== pkg.version || wanted !== pkg.version) {
      fail(`${name}: npm/${platform} is ${platformPkg.name}@${platformPkg.version}, ` +
        `optionalDependencies ask for ${wanted}, the package is ${pkg.version}`);
    }
    return { platform, file };
  });
  if (platforms.length === 0) fail('no platform packages in optionalDependencies');
  const required = process.env.CLAW_LLM_PACK_ALL === '1'
    ? platforms
    : platforms.filter((p) => p.platform === hostPlatform());
  if (required.length === 0) fail(`this machine's platform ${hostPlatform()} has no platform package`);
  for (const { platform, file } of required) {
    if (!fs.existsSync(file)) {
      fail(`the ${platform} binary ${path.relative(ROOT, file)} is missing ` +
        '(build it with scripts/package, or put the release artifacts there with `npm run artifacts`)');
    }
  }
} else {
  const { file } = binaryOf(cwd);
  if (!fs.existsSync(file)) fail(`${path.basename(file)} is missing (build it with scripts/package)`);
  fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(cwd, 'LICENSE'));
}
