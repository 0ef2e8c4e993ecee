#!/usr/bin/env bash
# Headless Chromium for the console's browser tests (tests/web/): Debian's package, driven by
# playwright-core through /usr/bin/chromium. Nothing is downloaded by Playwright itself.
# Idempotent: installs only when the executable is missing. Run as root (CI does).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  /usr/bin/chromium --version 2>/dev/null || true
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
