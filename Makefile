# NovaSphere API: `make run` (the whole stack, locally) and `make test` (lint, types, all tests).
# Everything missing on a fresh machine is installed here; slow builds are cached outside the repo.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/novasphere
UV_VERSION  := 0.13.9
UV          := $(CACHE_DIR)/uv-$(UV_VERSION)/bin/uv
VENV        := .venv
PYTHON      := $(VENV)/bin/python
# uv must use this machine's Python 3.11: it cannot download one here.
export UV_PYTHON := python3.11
export UV_PYTHON_DOWNLOADS := never
export UV  # the vmctl tests build its wheel and install it into a fresh virtualenv with it
PYTEST_ARGS ?=
BROWSER_DEPS := tests/browser/node_modules/.installed
WEB_DEPS     := web/node_modules/.installed
WEB_BUILD    := web/dist/index.html
WEB_SOURCES  := $(shell find web/src web/public gen/ts -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: help run test lint fmt gen web image web-dev bench-web bench-vmctl cluster-up cluster-down real-node bench bench-doors bench-sim bench-console bench-web-serial bench-floor bench-chart api-baseline deps clean chart-sources helm

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: deps $(WEB_BUILD) ## the whole stack with demo data until Ctrl-C (DEPLOY=helm: the chart on a real node)
ifeq ($(DEPLOY),helm)
	@$(PYTHON) -m devcluster chart
else
	@$(PYTHON) -m devcluster run $(foreach origin,$(CORS_ORIGINS),--cors-origin $(origin))
endif

test: lint $(BROWSER_DEPS) $(WEB_BUILD) ## lint, type check and every test (unit, integration, e2e) against a real control plane
	$(PYTHON) -m devcluster build
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.synced ## ruff (lint + format check) and mypy
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

fmt: $(VENV)/.synced ## format and autofix
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

gen: $(VENV)/.synced $(WEB_DEPS) chart-sources ## regenerate gen/ from proto/ (and the chart's copies of deploy/)
	$(PYTHON) tools/gen.py

chart-sources: $(VENV)/.synced ## copy deploy/ CRDs, RBAC and authz defaults into the Helm chart's files/
	$(PYTHON) tools/chart_sources.py

helm: $(VENV)/.synced ## build (once, cached) helm v4 from devcluster/helm/ and print its path
	@$(PYTHON) -c "from devcluster import binaries; print(binaries.ensure_helm())"

web: $(WEB_BUILD) ## build the web console (type check + bundle into web/dist)

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	npm --prefix web run --silent build

image: deps $(WEB_BUILD) ## the API image and the pause image as OCI archives (mmdebstrap + umoci, cached): path, name, size
	@$(PYTHON) -m devcluster image

web-dev: deps ## Vite dev server for UI work, proxying the API to the stack `make run` started (source .run/env first)
	npm --prefix web run dev

cluster-up: deps ## start a control plane in the background and print its KUBECONFIG
	@$(PYTHON) -m devcluster up

real-node: deps ## a control plane with a real node (kubelet, containerd, kube-scheduler) until Ctrl-C
	@$(PYTHON) -m devcluster node

cluster-down: $(VENV)/.synced ## stop the control plane cluster-up started
	@$(PYTHON) -m devcluster down

bench: deps ## N running VMs: lists, memory, start-up, relist, watch fan-out vs kube-apiserver, one table (BENCH_WUKONGS=10000 BENCH_REPEAT=5: the issue's run)
	$(PYTHON) -m bench --wukongs $(or $(BENCH_WUKONGS),2000) --repeat $(or $(BENCH_REPEAT),1)

bench-doors: deps ## Get/List through each door (gRPC, REST, gRPC-Web via Envoy) vs kube-apiserver itself; what Lua, the access log and default values cost REST
	$(PYTHON) -m bench.doors --variants --page-size 50

bench-web: deps $(WEB_BUILD) ## web console: navigation to the VM list's first rows in chromium, vs the page's own load
	$(PYTHON) -m bench.web_console --wukongs $(or $(BENCH_WUKONGS),200)

bench-vmctl: deps ## vmctl start-up (--client-version, version, get), installed from its wheel, vs python -c pass
	$(PYTHON) -m bench.vmctl_startup

WUKONGS ?= 2000
bench-console: deps ## console proxy: keystroke echo latency and VNC throughput vs kube-apiserver's console directly
	$(PYTHON) -m bench.console

bench-web-serial: deps $(WEB_BUILD) ## web serial console: keystroke-to-echo latency in chromium (xterm.js), to compare with bench-console
	$(PYTHON) -m bench.web_serial_latency

bench-floor: deps ## bare grpc.aio fan-out to 1 and 500 streams (no NovaSphere): the floor under make bench's stream ratio
	$(PYTHON) -m bench.grpc_floor

bench-chart: deps ## the chart on a real node: each container's memory with WUKONGS Wukongs against its limit
	$(PYTHON) -m bench.chart_memory --wukongs $(WUKONGS)

bench-sim: deps ## simulator scale: WUKONGS Wukongs from create to Running, memory, writes/s
	$(PYTHON) -m bench.sim_scale --wukongs $(WUKONGS)

api-baseline: $(VENV)/.synced ## at a release: make the current API the baseline `buf breaking` checks later changes against
	$(PYTHON) tools/api_baseline.py

deps: $(VENV)/.synced $(BROWSER_DEPS) $(WEB_DEPS) ## Python env, etcd, chromium, npm packages, cached Kubernetes/grpcurl/helm builds
	@$(PYTHON) -m devcluster build

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_DEPS): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	@touch $@

$(UV):
	python3 -m venv $(CACHE_DIR)/uv-$(UV_VERSION)
	$(CACHE_DIR)/uv-$(UV_VERSION)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

clean: ## remove the virtualenv and local state (not the Kubernetes cache)
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules web/node_modules web/dist
