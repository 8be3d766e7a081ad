# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# reana-client pins jsonschema<4 and a 2021 cwltool: it gets a virtual environment of its own
REANA_VENV  := .venv-reana
REANA_STAMP := $(REANA_VENV)/.installed-stamp
WORKDIR ?= work

.PHONY: run test test-slow lint bench clean .venv-reana system-packages

# Debian packages the tests use for real: a Docker daemon (images, steps in containers),
# debootstrap (the images' base file system), an XRootD and an nginx server (remote inputs),
# a registry (pushes), chromium and its driver (the registry's web pages in a headless browser),
# PostgreSQL (the registry's facility database; its binaries are not on PATH, hence the glob).
# Installed once, when a command is missing; servers are started by tests.
SYSTEM_COMMANDS := dockerd:docker.io debootstrap:debootstrap xrootd:xrootd-server \
                   docker-registry:docker-registry nginx:nginx-light openssl:openssl \
                   chromium:chromium chromedriver:chromium-driver

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test]'
	@touch $(STAMP)

$(REANA_STAMP): requirements/reana-client.txt
	@test -x $(REANA_VENV)/bin/python || $(PYTHON) -m venv $(REANA_VENV)
	$(REANA_VENV)/bin/python -m pip install --quiet -r requirements/reana-client.txt
	@touch $(REANA_STAMP)

.venv-reana: $(REANA_STAMP)

system-packages:
	@missing=""; for pair in $(SYSTEM_COMMANDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || test -x /usr/sbin/$${pair%%:*} || \
	    test -x /usr/bin/$${pair%%:*} || missing="$$missing $${pair##*:}"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
	    >/dev/null; fi

run: $(STAMP)
	$(BIN)/reanimate run specs/agc-ttbar.yaml --workdir $(WORKDIR)

test: $(STAMP) $(REANA_STAMP) system-packages
	$(BIN)/python -m pytest -q --durations=25

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(WORKDIR) .pytest_cache
