# The two commands a new user runs: `make demo` and `make test`.
# Everything installs into .venv; nothing is installed system-wide except the
# Debian data packages the tests read (see `deb-deps`).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 50051
HTTP_PORT ?= 8080
MODELS ?= models
# grpcio-tools for `make proto`, pinned in protos/protoc-requirements.txt
PROTO_VENV ?= .venv-proto

# dataset-fashion-mnist: Fashion-MNIST IDX files; chromium + chromium-driver:
# the browser tests of the playground page (tests/http/test_playground.py).
DEB_PACKAGES ?= dataset-fashion-mnist chromium chromium-driver

.PHONY: help venv deb-deps test test-slow test-compat demo proto models zoo zoo-table serve lint bench bench-h2load bench-compare bench-attacks docs-figures clean

help:
	@echo "make demo       start the server on the bundled models, sample a grid of 7s"
	@echo "make test       set up .venv and run the test suite"
	@echo "make test-slow  the slow suites"
	@echo "make test-compat  SDK next to tritonclient[grpc] (protobuf 6), server on the lowest declared versions"
	@echo "make zoo        retrain every bundled model from fixed seeds, judge them, write docs/model-zoo.md"
	@echo "make zoo-table  judge the bundled models and rewrite docs/model-zoo.md (no training)"
	@echo "make serve      serve the bundled models: gRPC on :$(PORT), HTTP and the playground on :$(HTTP_PORT)"
	@echo "make proto      regenerate the gRPC code from protos/"
	@echo "make bench-h2load  server CPU and latency per request under h2load (installs nghttp2-client)"
	@echo "make bench-compare gan-server vs TorchServe under h2load, n=256 and c=1 against in process (Java 17)"
	@echo "make bench-attacks server memory, CPU and unary latency under six transport attacks (installs nghttp2-client)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[serve,train,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages some tests need (Fashion-MNIST IDX files, a headless browser).
# Installed when missing and apt-get can run; otherwise those tests skip with a reason.
deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing Debian packages:$$missing (run as root: apt-get install$$missing)"; \
	  fi; \
	fi

test: $(STAMP) deb-deps
	$(PY) -m pytest -q

test-slow: $(STAMP) deb-deps
	$(PY) -m pytest -q -m slow

# Builds its own virtualenvs (cached in .venv-compat/) from PyPI.
test-compat: $(STAMP)
	$(PY) -m pytest -q -m compat tests/compat

lint: $(STAMP)
	$(VENV)/bin/ruff check serving sdk training tests bench

docs-figures: $(STAMP)
	$(PY) docs/make_figures.py

bench: $(STAMP)
	$(PY) bench/backends.py --only dcgan cgan infogan --rounds 3 --seconds 0.5
	$(PY) bench/serving.py --model dcgan --rounds 3 --seconds 1.5 --clients 64
	$(PY) bench/torchserve.py --models $(MODELS) --model dcgan

# Per-request cost under h2load (req/s, latency, server CPU per request) against
# the empty-handler grpc.aio floor; h2load comes from Debian's nghttp2-client.
bench-h2load: $(STAMP)
	@$(MAKE) --no-print-directory deb-deps DEB_PACKAGES=nghttp2-client
	$(PY) bench/h2load.py --models $(MODELS) --model dcgan --rounds 3 --requests 4000 --floor

# gan-server against TorchServe's best tuned gRPC registration, both under h2load in one
# interleaved run; n=256 through gRPC and c=1 latency against in process
# (docs/benchmarks.md, "gan-server vs TorchServe under h2load"). TorchServe needs Java 17.
bench-compare: $(STAMP)
	@$(MAKE) --no-print-directory deb-deps DEB_PACKAGES=nghttp2-client
	$(PY) bench/compare.py --models $(MODELS) --model dcgan --rounds 3 --floor --variant nobatch=--no-batching --variant 'processes2=--processes 2'

# The transport attacks of docs/security.md ("Measured under attack") against a server with
# the default limits: RSS, CPU, and h2load's unary Sample latency during each (about 8 minutes).
bench-attacks: $(STAMP)
	@$(MAKE) --no-print-directory deb-deps DEB_PACKAGES=nghttp2-client
	$(PY) bench/attacks.py --models $(MODELS) --out bench/out/attacks.json

# Start a server on a free port, sample 64 sevens from the bundled InfoGAN,
# print the grid's path, stop the server.
demo: $(STAMP)
	@tmp=$$(mktemp -d); \
	$(VENV)/bin/gan-server --models $(MODELS) --port 0 > $$tmp/server.out 2> $$tmp/server.log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf '"$$tmp" EXIT; \
	for i in $$(seq 1 240); do \
	  grep -q listening $$tmp/server.out && break; \
	  kill -0 $$pid 2>/dev/null || { cat $$tmp/server.log; exit 1; }; sleep 0.25; \
	done; \
	addr=$$(awk '/listening/ {print $$4}' $$tmp/server.out); \
	echo "gan-server ready at $$addr"; \
	$(VENV)/bin/gan-client --server $$addr sample --model infogan --digit 7 -n 64 --seed 7 \
	  --out $(CURDIR)/demo-sevens.png

# gan.v1 code lives in the contract package (gan_contract.proto), the Open
# Inference Protocol code inside the server; tests/test_packaging.py fails
# when either is stale. The generator runs from $(PROTO_VENV), not $(VENV): its
# pinned grpcio-tools decides the protobuf/grpcio runtimes the code accepts
# (see protos/protoc-requirements.txt).
proto:
	PROTO_VENV=$(PROTO_VENV) $(PYTHON) protos/generate.py

# Every model of the zoo (models.mk), then `gan-train eval` on each and the
# generated table (docs/model-zoo.md, README). Two trainings at a time.
zoo models: $(STAMP) deb-deps
	$(MAKE) -C . -f models.mk PY=$(abspath $(PY)) -j2 all

zoo-table: $(STAMP) deb-deps
	$(MAKE) -C . -f models.mk PY=$(abspath $(PY)) table

# gRPC on $(PORT), HTTP (REST, image URLs, the playground at /) on $(HTTP_PORT);
# the README's curl lines use these ports (tests/http/test_readme.py).
serve: $(STAMP)
	$(VENV)/bin/gan-server --models $(MODELS) --port $(PORT) --http-port $(HTTP_PORT)

clean:
	rm -rf $(VENV) $(PROTO_VENV) .venv-compat build *.egg-info runs
