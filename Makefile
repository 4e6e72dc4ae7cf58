# osdeploy: the README names these targets. Everything runs from the project
# venv (.venv); podman uses the project's lab/containers.conf.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
DEMO_DIR ?= $(CURDIR)/.lab/demo
ifdef CI
# Plain text in CI logs.
export NO_COLOR := 1
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
endif
ROLES := $(patsubst %/molecule/default/,%,$(sort $(dir $(wildcard roles/*/molecule/default/molecule.yml))))
# Scenarios that start from the Molecule stack image (their .env.yml names it).
STACK_ROLES := $(patsubst %/.env.yml,%,$(shell grep -l '^MOLECULE_OSDEPLOY_IMAGE:' roles/*/.env.yml))
# Longest first, so the two slots finish close together: nova and neutron,
# the other stack scenarios (all after the stack image), then the rest.
LONGEST_ROLES := roles/nova roles/neutron
ORDERED_ROLES := $(LONGEST_ROLES) $(filter-out $(LONGEST_ROLES),$(STACK_ROLES)) \
  $(filter-out $(LONGEST_ROLES) $(STACK_ROLES),$(ROLES))
MOLECULE_TARGETS := $(ORDERED_ROLES:roles/%=molecule/%)
# Scenarios run side by side: much of each is waiting (downloads, service
# starts), so two at a time finish sooner on two cores. Output is grouped
# per scenario (make -O).
MOLECULE_JOBS ?= 2

.PHONY: demo test checks lint unit image molecule molecule-stack e2e bench deps clean demo-down $(MOLECULE_TARGETS)

## demo: a lab cloud on this machine, deployed and verified
demo: deps
	osdeploy --dir $(DEMO_DIR) lab up
	osdeploy --dir $(DEMO_DIR) deploy
	osdeploy --dir $(DEMO_DIR) verify
	@echo
	@osdeploy --dir $(DEMO_DIR) openrc
	@echo "Try it:  . $(VENV)/bin/activate; export OS_CLIENT_CONFIG_FILE=$(DEMO_DIR)/clouds.yaml"
	@echo "         openstack --os-cloud osdeploy hypervisor list"
	@echo "         openstack --os-cloud osdeploy metric resource list --type instance"
	@echo "         osdeploy --dir $(DEMO_DIR) usage --project demo --since 1h"
	@echo "         (README.md, A short tour: boot a server on the lab cloud)"

demo-down: deps
	osdeploy --dir $(DEMO_DIR) lab down

## test: lint, unit tests, every role's Molecule scenario, the lab cloud end to end
# The Molecule scenarios and the end-to-end lab run side by side (separate
# containers, networks and apt archives): both spend much of their time
# waiting, and one after the other they would take most of CI's hour. Lint
# and the unit tests run beside them (a few minutes of CPU while the first
# hosts install packages); any failure fails the run. Lines interleave; each
# scenario's own output stays together (make -O).
test: deps
	@$(MAKE) --no-print-directory -j3 checks molecule e2e

checks: lint unit

deps: $(VENV)/.installed
	scripts/host-deps

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lint: deps
	ruff check installer tests tools plugins $(wildcard roles/*/library roles/*/files/*.py)
	ruff format --check installer tests tools plugins $(wildcard roles/*/library roles/*/files/*.py)
	mypy
	yamllint -s .
	ansible-lint
	python tools/role_readme.py --check
	python tools/repeated_tasks.py

unit: deps
	pytest -q tests/unit

image: deps
	osdeploy lab image

# The stack image first, alone (seconds when it is current), then the
# scenarios with it taken as made (STACK_MADE): as a prerequisite inside the
# -j run, make started the scenarios that do not need it first and nova and
# neutron, the longest, 12 minutes late (docs/benchmarks.md, fifth step).
# Niced, as their containers get a quarter of a lab host's CPU weight
# (.config/molecule/config.yml): in `make test` the e2e lab is the longer leg.
molecule: image
	@nice -n 10 $(MAKE) --no-print-directory molecule-stack
	@nice -n 10 $(MAKE) --no-print-directory -j$(MOLECULE_JOBS) -O STACK_MADE=1 $(MOLECULE_TARGETS)

# The stack image the stack scenarios start from; rebuilt only when its
# recipe changed (tools/molecule_stack.py, which makes sure of the host image
# itself). Its only prerequisite is the machine's Molecule key (order-only,
# made once). A single stack scenario (make molecule/nova) makes it first;
# `make molecule` makes it before the -j run.
molecule-stack:
	@mkdir -p /var/cache/osdeploy/apt-archives/molecule-stack/partial
	python tools/molecule_stack.py

ifndef STACK_MADE
$(STACK_ROLES:roles/%=molecule/%): molecule-stack
endif

# The key Molecule's steps log in to the containers with
# (.config/molecule/config.yml, ssh-proxy); one per machine, made once.
MOLECULE_KEY := /var/cache/osdeploy/molecule/ssh_ed25519
$(MOLECULE_KEY):
	@mkdir -p $(@D)
	ssh-keygen -q -t ed25519 -N '' -C osdeploy-molecule -f $@

molecule-stack $(MOLECULE_TARGETS): | $(MOLECULE_KEY)

# One scenario: make molecule/<role>. Each has its own apt archive, so
# scenarios running side by side do not wait on each other's apt lock.
$(MOLECULE_TARGETS): molecule/%:
	@echo "== molecule: $*"
	@mkdir -p /var/cache/osdeploy/apt-archives/molecule-$$(sed -n 's/^MOLECULE_OSDEPLOY_ROLE: *//p' roles/$*/.env.yml)/partial
	@start=$$(date +%s); cd roles/$* && molecule test; \
	  echo "== molecule: $* passed in $$(( $$(date +%s) - start )) s"

e2e: image
	pytest -v -rP -p no:cacheprovider --durations=0 tests/e2e

## bench: cold deploy, no-op rerun, raw apt install of the same packages, peak memory
bench: image
	python tools/bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
