#!/usr/bin/env bash
# Run the test suite (unit + end-to-end on a real vLLM server). Installs first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pytest ] && .venv/bin/python -c "import vllm, vllm_mcp_ext" 2>/dev/null || bash scripts/install.sh .venv
# The MCP conformance suite (tests/conformance) on the venv's Node, once.
[ -d tests/conformance/node_modules ] || .venv/bin/python -m tests.support.node
exec .venv/bin/python -m pytest -q -ra "$@"
