#!/usr/bin/env bash
# Install microgradnn and what it needs, then print the path of the Python it is installed for.
#   scripts/setup.sh          the package (editable) with pytest and matplotlib, Graphviz's `dot` and
#                             Debian's word list /usr/share/dict/words (wamerican, the GPT demo's corpus)
#   scripts/setup.sh --test   also hypothesis, IPython, Jupyter's nbformat, nbclient, ipykernel, nbconvert,
#                             tqdm, ipywidgets, PyTorch, micrograd, build, ruff, mypy and Chromium
# The Python is python3 (or $PYTHON) itself when pip may install into it: an active venv or conda
# env, pyenv, a python.org build. When it is the OS's own Python (PEP 668, "externally managed")
# and no environment is active, it is the project environment .venv/, made here on first use.
# Re-running is quick and changes nothing: pip runs only when its inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") mode=plot extras=plot ;;
  --test) mode=test extras=plot,test,torch,bench ;;
  *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
esac
say() { echo "setup: $*" >&2; }

apt_install() {  # Debian and Ubuntu; elsewhere say what to install
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    say "installing $* with apt-get"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  else
    say "please install $* yourself (macOS: brew install graphviz; conda: conda install graphviz), then rerun"
    exit 1
  fi
}

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[[ -e /usr/share/dict/words ]] || ! command -v apt-get >/dev/null 2>&1 || missing+=(wamerican)  # optional
if [[ $mode == test ]] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  missing+=(chromium)
fi
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  say "no $python on PATH; install Python 3.10 or newer (Debian, Ubuntu: apt-get install python3 python3-venv)"
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  say "microgradnn needs Python 3.10 or newer; $(command -v "$python") is $("$python" -V 2>&1)"
  exit 1
fi
# PEP 668 marks the OS's Python by a file in its stdlib folder. A venv made from that Python
# shares the folder but is not managed (its sys.prefix differs from sys.base_prefix).
if "$python" -c 'import os, sys, sysconfig
sys.exit(sys.prefix != sys.base_prefix
         or not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  if ! .venv/bin/python -c '' >/dev/null 2>&1; then
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
    say "$(command -v "$python") is the OS's own Python (PEP 668): making the project environment .venv/"
    "$python" -m venv --clear .venv >&2
  fi
  python=.venv/bin/python
fi
python=$("$python" -c 'import os, sys; print(os.path.abspath(sys.executable))')

# What pip's last run here depended on. site-packages' mtime changes whenever a package is added
# to it or removed (a new .venv, another checkout's editable install into the same Python).
inputs() {
  { echo "$PWD"; cat scripts/setup.sh pyproject.toml
    "$python" -c 'import os, sys, sysconfig
print(sys.prefix, sys.version, os.stat(sysconfig.get_path("purelib")).st_mtime_ns)'
  } | cksum
}
stamp=.setup-stamp
[[ -f $stamp ]] && read -r stamped_mode stamped_inputs < "$stamp" || true
if [[ ${stamped_inputs:-} != "$(inputs)" || ($mode == test && ${stamped_mode:-} != test) ]]; then
  say "installing microgradnn (editable, extras $extras) for $python"
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  if [[ $mode == test ]] && ! "$python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
    # The project's pin: the CPU build on this project's machines. Elsewhere, install a CPU build
    # of torch first (README, "PyTorch"); an installed torch is kept.
    "$python" -m pip install -q torch==2.13.0 >&2
  fi
  "$python" -m pip install -q -e ".[$extras]" >&2
  echo "$mode $(inputs)" > "$stamp"
fi
echo "$python"
