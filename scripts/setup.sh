#!/usr/bin/env bash
# Create .venv and install the workbench. `--dev` adds the test tools, the scale-out packages
# (requirements-scale.txt: Ray, the openai client) and the Debian packages the tests use (Chromium
# for the browser test, ffmpeg/espeak-ng/sox for media fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo_=""; else sudo_="sudo"; fi
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium fonts-noto-color-emoji ffmpeg espeak-ng sox >/dev/null
  fi
else
  .venv/bin/python -m pip install -q -r requirements.txt
fi
