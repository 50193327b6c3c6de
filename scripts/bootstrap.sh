# Sourced by the demo and CI scripts: a Python >= 3.11 virtualenv in .venv with gflow
# installed (editable), and tmux when it is missing and apt is at hand.
pick_python() {
    for py in python3 python3.13 python3.12 python3.11; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "gflow needs Python 3.11 or newer" >&2
    return 1
}

if ! command -v tmux >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo_cmd=""
        [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq tmux >/dev/null ||
            echo "warning: could not install tmux; jobs will run as plain process groups" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# Until 0.1.0 the distribution was named "gflow" (a name taken on PyPI); drop that install
# and what setuptools left in src/ when it built gflow.
if compgen -G ".venv/lib/python3*/site-packages/gflow-*.dist-info" >/dev/null; then
    .venv/bin/python -m pip uninstall -q -y gflow
fi
rm -rf src/*.egg-info
.venv/bin/python -m pip install -q -e ".${GFLOW_EXTRAS:-}"
