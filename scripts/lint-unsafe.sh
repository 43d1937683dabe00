#!/usr/bin/env bash
# Fail on unsafe loading in harness/: torch.load without weights_only=True, pickle.load(s),
# eval() of strings, trust_remote_code=True hard-coded. Our own files are JSON, safetensors or
# SQLite; models from strangers never get to run code.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE "torch\.load\(|pickle\.loads?\(|dill\.load|trust_remote_code *= *True|[^_.a-zA-Z]eval\(" harness --include='*.py' | grep -v "weights_only=True" || true)
if [ -n "$hits" ]; then
  echo "unsafe loading or eval in harness/:" >&2
  echo "$hits" >&2
  exit 1
fi
