#!/usr/bin/env bash
# Writes requirements-lock.txt: every package a full install (runtime + the dev extra) pulls
# in, at one exact version, resolved from pyproject.toml's ranges by pip-tools. The README's
# commands, .ci/run and the images (deploy/Dockerfile*) install with `-c requirements-lock.txt`,
# so a fresh clone gets the versions CI last passed with, not whatever was released since.
#
#   deploy/lock.sh                           # after editing pyproject.toml: keeps other pins
#   deploy/lock.sh --upgrade                 # refresh everything to the newest allowed
#   deploy/lock.sh --upgrade-package ray     # refresh one package (and what it needs)
#
# Then reinstall (the README's first command) and run the tests before committing the lock.
# Resolved for this machine's Python (3.11) on Linux x86_64; the images run Python 3.12 with
# the same pins.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install -q pip-tools==7.7.0

CUSTOM_COMPILE_COMMAND="deploy/lock.sh" "$tools/bin/pip-compile" --quiet \
    --extra dev --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    --output-file requirements-lock.txt "$@" pyproject.toml

# A local build label (torch's "+cpu" when a CPU wheel was at hand) names a file that PyPI
# does not serve; without it the pin still matches that build (PEP 440 ignores the label)
# and elsewhere takes PyPI's or the PyTorch index's build of the same release.
sed -i -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+/\1/' requirements-lock.txt
echo "wrote requirements-lock.txt ($(grep -c '==' requirements-lock.txt) pins)"
