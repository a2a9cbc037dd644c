#!/usr/bin/env bash
# Install microgradnn and everything it needs on this machine.
#   scripts/setup.sh          the library, Graphviz's `dot`, matplotlib (for the demo) and Debian's word
#                             list /usr/share/dict/words (wamerican, the GPT demo's corpus; optional)
#   scripts/setup.sh --test   also pytest, hypothesis, PyTorch 2.13.0 (CPU), micrograd and Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
test_mode=false
[[ "${1:-}" == "--test" ]] && test_mode=true

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[[ -e /usr/share/dict/words ]] || ! command -v apt-get >/dev/null 2>&1 || missing+=(wamerican)
$test_mode && ! command -v chromium >/dev/null 2>&1 && missing+=(chromium)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "setup: installing ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} yourself (macOS: brew install graphviz; conda: conda install graphviz), then rerun" >&2
    exit 1
  fi
fi

if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  echo "setup: $(command -v "$PYTHON") is managed by the OS (PEP 668); make a virtualenv first:" >&2
  echo "  python3 -m venv .venv && . .venv/bin/activate && $0 $*" >&2
  exit 1
fi

if $test_mode; then
  # This exact pin is the CPU build on this machine's disk; elsewhere any recent torch works.
  "$PYTHON" -m pip install -q --root-user-action=ignore torch==2.13.0
  "$PYTHON" -m pip install -q --root-user-action=ignore -e ".[plot,test,torch,bench]"
else
  "$PYTHON" -m pip install -q --root-user-action=ignore -e ".[plot]"
fi
