'use strict';
// `prepack` of claw-llm-client and of every npm/<platform> package: refuses to pack a package
// that would fail at require time.
//   npm/<platform>: its .node file (package.json "main") must be there; LICENSE is copied in.
//   claw-llm-client (repository root): its optionalDependencies must name exactly the
//   npm/<platform> packages, at the package's version, and the binary of this machine's platform
//   must be built into its npm/<platform> directory (scripts/package does that).
//   CLAW_LLM_PACK_ALL=1 (the release workflow) requires the binaries of every platform.
//
// The repository's package.json lists no optionalDependencies: the platform packages are not on
// the registry until the first release, and `npm ci` cannot lock a package that does not exist
// (nor should a development install fetch whatever a stranger publishes under those names).
// They are written into package.json only when a package is made: by `napi prepublish`
// (prepublishOnly, on `npm publish`) or by `node npm/prepack.js --write-optional-deps`
// (scripts/package, which restores package.json afterwards).
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

// The platform packages, from npm/<platform>/package.json: { platform, name, version, dir }.
function platformPackages() {
  const prefix = `${pkg.name}-`;
  return fs.readdirSync(NPM_DIR).sort()
    .filter((platform) => fs.existsSync(path.join(NPM_DIR, platform, 'package.json')))
    .map((platform) => {
      const dir = path.join(NPM_DIR, platform);
      const { platformPkg } = binaryOf(dir);
      if (platformPkg.name !== `${prefix}${platform}`) {
        fail(`npm/${platform}/package.json is ${platformPkg.name}, expected ${prefix}${platform}`);
      }
      return { platform, name: platformPkg.name, version: platformPkg.version, dir };
    });
}

function expectedOptionalDeps() {
  const deps = {};
  for (const p of platformPackages()) deps[p.name] = pkg.version;
  return deps;
}

if (pkg.napi && process.argv[2] === '--write-optional-deps') {
  pkg.optionalDependencies = expectedOptionalDeps();
  fs.writeFileSync(path.join(cwd, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
} else if (pkg.napi) {
  const packages = platformPackages();
  const deps = pkg.optionalDependencies || {};
  if (Object.keys(deps).length === 0) {
    fail('package.json lists no optionalDependencies (the platform packages): `npm publish` writes ' +
      'them (prepublishOnly runs napi prepublish), scripts/package writes them with ' +
      '`node npm/prepack.js --write-optional-deps`');
  }
  for (const name of Object.keys(deps)) {
    if (!packages.some((p) => p.name === name)) fail(`optional dependency ${name} is not a platform package`);
  }
  const platforms = packages.map(({ platform, name, version, dir }) => {
    const wanted = deps[name];
    if (wanted === undefined) fail(`optionalDependencies lack the platform package ${name}`);
    if (version !== pkg.version || wanted !== pkg.version) {
      fail(`${name}: npm/${platform} is ${name}@${version}, ` +
        `optionalDependencies ask for ${wanted}, the package is ${pkg.version}`);
    }
    return { platform, file: binaryOf(dir).file };
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
