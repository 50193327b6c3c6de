#!/usr/bin/env bash
# Build the release artifacts (sdist, then the wheel from it), check their metadata, install
# the wheel (not the source tree) into a fresh virtualenv and run the demo with it, from
# outside the checkout: a file missing from the package (the job wrapper, man pages,
# templates, static files) fails here. Needs .venv with the [test] extra (build, twine).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="$(mktemp -d /tmp/gflow-release.XXXXXX)"
trap 'rm -rf "$out"' EXIT

echo "== build and check the sdist and the wheel"
.venv/bin/python -m build --outdir "$out/dist" >"$out/build.log" 2>&1 || {
    cat "$out/build.log"
    exit 1
}
.venv/bin/twine check --strict "$out"/dist/*
wheel="$(echo "$out"/dist/*.whl)"

echo "== install $(basename "$wheel") into a fresh virtualenv"
"$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$out/venv"
.venv/bin/python -m pip --python "$out/venv/bin/python" install -q "$wheel"
bin="$out/venv/bin"
version="$("$bin/gflow" --version)"
echo "$version"
[ "$version" = "gflow $(.venv/bin/python -c 'import gflow; print(gflow.__version__)')" ]
for tool in gflowd gbatch gqueue gcancel gjob ginfo gctl gstats gflow; do
    [ -f "$out/venv/share/man/man1/$tool.1" ] || { echo "missing man page $tool.1" >&2; exit 1; }
done
if command -v man >/dev/null 2>&1; then
    [ "$(PATH="$bin:$PATH" man -w gbatch)" = "$out/venv/share/man/man1/gbatch.1" ]
fi
"$bin/gflow" man gbatch --text | grep -q -- "--depends-on-any"

echo "== the demo, run by the installed wheel"
(cd / && env -u PYTHONPATH GFLOW_BIN="$bin" bash "$root/scripts/demo.sh")
echo "== the dashboard (its templates and static files), served by the installed wheel"
.venv/bin/python -m pip --python "$out/venv/bin/python" install -q "$wheel[web]"
home="$(mktemp -d /tmp/gfweb.XXXXXX)"
web_env=(env -u PYTHONPATH GFLOW_HOME="$home" GFLOW_DAEMON__WEB=1 GFLOW_DAEMON__EXECUTOR=process)
(cd / && "${web_env[@]}" "$bin/gflowd" up >/dev/null)
url="$(cd / && "${web_env[@]}" "$bin/gflow" web --no-browser)"
"$bin/python" - "$url" <<'PY' || { "${web_env[@]}" "$bin/gflowd" down; exit 1; }
import sys, urllib.request
url = sys.argv[1]
base = url.split("/?")[0]
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
page = browser.open(url).read().decode()  # signs in (a cookie), then the queue page
assert "<title>Queue · gflow</title>" in page, page[:200]
for asset in ("/static/app.js", "/static/app.css"):
    assert browser.open(base + asset).status == 200, asset
PY
(cd / && "${web_env[@]}" "$bin/gflowd" down >/dev/null)
rm -rf "$home"
echo "== release artifacts OK"
