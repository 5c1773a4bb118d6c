"""PostHog's JavaScript SDKs for the tests that drive them (posthog-node from Node.js, posthog-js
in Chromium), exactly as tests/sdk/node/package-lock.json pins them: installed with `npm ci` once
per lock into .cache/node-sdks/<hash of the lock>/ (git-ignored) and reused after. Never installs
globally, nor into the tracked tree. Without a Node.js that posthog-node supports, they skip."""

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.process_helpers import REPO

SDK_DIR = REPO / "tests" / "sdk" / "node"
CACHE = REPO / ".cache" / "node-sdks"
LOCKED = ("package.json", "package-lock.json")


def node_supported(version: str) -> bool:
    """posthog-node 5.70's `engines`: `^20.20.0 || >=22.22.0` (`version` as `node --version` says it)."""
    found = re.match(r"v?(\d+)\.(\d+)", version)
    if found is None:
        return False
    major, minor = int(found[1]), int(found[2])
    return (major, minor) >= (22, 22) or (major == 20 and minor >= 20)


def lock_hash() -> str:
    digest = hashlib.sha256()
    for name in LOCKED:
        digest.update((SDK_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def install() -> Path:
    """The node_modules of the locked SDKs, installed first if this lock's are not yet; skips the
    test (saying why) where node or npm is missing or too old."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(f"`{name}`" for name, path in (("node", node), ("npm", npm)) if path is None)
        pytest.skip(f"PostHog's JavaScript SDKs need Node.js and npm: no {missing} on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if not node_supported(version):
        pytest.skip(f"posthog-node needs Node.js ^20.20.0 || >=22.22.0; this machine has {version}")
    target = CACHE / lock_hash()
    if not (target / "node_modules").is_dir():
        # TRICKY: installed beside the target and renamed into place, so two test runs installing
        # at once never see a half-installed tree: the rename is atomic, and the loser's is dropped.
        staging = CACHE / f"{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in LOCKED:
            shutil.copy2(SDK_DIR / name, staging / name)
        # --ignore-scripts: the SDKs need none (core-js's postinstall only prints an advert).
        argv = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        done = subprocess.run(argv, cwd=staging, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"`{' '.join(argv)}` in {staging} failed ({done.returncode}):\n{done.stderr}")
        try:
            staging.rename(target)
        except OSError:  # another run renamed its own first: use that one
            shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"
