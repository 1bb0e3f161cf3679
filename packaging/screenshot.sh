#!/usr/bin/env bash
# Screenshots of the app on the demo library (make screenshot): under Xvfb when it is installed,
# else with Qt's offscreen platform (widgets are grabbed, so both give the same pictures).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [[ -z "${QT_QPA_PLATFORM:-}" ]] && command -v xvfb-run >/dev/null 2>&1; then
    exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" packaging/screenshot.py "$@"
fi
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "$PY" packaging/screenshot.py "$@"
