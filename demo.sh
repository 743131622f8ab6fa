#!/usr/bin/env bash
# `make demo`: the whole loop on this machine's `local` target, no SSH needed.
# Models -> plan -> apply (Ray + Serve, token auth on) -> predict -> feedback -> status -> destroy.
set -euo pipefail
cd "$(dirname "$0")"
BIN=.venv/bin
INV=inventory.example.yaml
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "hosts of the local target"
$BIN/mlops-tui check -i "$INV" --target local
say "demo models: breast-cancer v1 (good), v2 (better), v3 (bad)"
$BIN/mlops-tui models -i "$INV" example
say "plan"
$BIN/mlops-tui plan -i "$INV" --target local || [ $? -eq 4 ]
trap '$BIN/mlops-tui destroy -i "$INV" --target local --yes >/dev/null || true' EXIT
say "apply"
$BIN/mlops-tui apply -i "$INV" --target local --yes
say "a prediction and its ground truth"
ROW=$($BIN/python -c 'from sklearn.datasets import load_breast_cancer as l; import json; print(json.dumps({"instances": l().data[:2].tolist()}))')
ANSWER=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$ROW" http://127.0.0.2:8000/cancer/predict)
echo "$ANSWER"
IDS=$(echo "$ANSWER" | $BIN/python -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([{"request_id": r, "label": 0} for r in d["request_ids"]]))')
curl -sf -X POST -H 'Content-Type: application/json' -d "$IDS" http://127.0.0.2:8000/cancer/feedback; echo
say "status"
$BIN/mlops-tui status -i "$INV" --target local
say "second apply changes nothing"
$BIN/mlops-tui plan -i "$INV" --target local
say "destroy (stops the Ray processes the demo started)"
trap - EXIT
$BIN/mlops-tui destroy -i "$INV" --target local --yes
