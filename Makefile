# cgprocfs developer entry points; see README.md.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
MOUNTPOINT ?= /var/lib/cgprocfs
# How long each fuzz target runs in `make fuzz`.
FUZZTIME ?= 30s
# `make install`: where to (DESTDIR is prepended to every path, for
# packaging), and what (built first when it is bin/cgprocfs).
PREFIX ?= /usr/local
DESTDIR ?=
BINARY ?= bin/cgprocfs
HOOKSDIR ?= /usr/share/containers/oci/hooks.d
SYSTEMDDIR ?= /etc/systemd/system

.PHONY: all build run deps test check unit fuzz-seeds integration containerd test-v2 fuzz bench clean install uninstall gofuse-patch

all: build

# go.mod's replace names go-fuse with hack/go-fuse.patch applied, in
# .cache/go-fuse: every target that runs go needs it (quick once done).
gofuse-patch:
	hack/gofuse-patch.sh

build: gofuse-patch
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/cgprocfs .

# Installs what is missing, builds, mounts at $(MOUNTPOINT) in the foreground.
run:
	hack/deps.sh run
	$(MAKE) build
	bin/cgprocfs mount $(MOUNTPOINT)

deps:
	hack/deps.sh test

# Everything CI runs: set-up, format and vet, unit tests, fuzz seeds,
# integration tests on this host, and the suite again on cgroup v2 in a VM.
test: deps check unit fuzz-seeds integration test-v2

check: gofuse-patch
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Unit tests (the fuzz targets' seed corpora run as part of them), and the
# tests hack/go-fuse.patch adds to go-fuse.
unit: gofuse-patch
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v /integration)
	cd .cache/go-fuse && $(GO) test -count=1 -run 'CPUList' ./fuse

fuzz-seeds: gofuse-patch
	$(GO) test -count=1 -run '^Fuzz' ./...

# The NRI tests run a real containerd and crictl: built from the Go module
# proxy once (about 4 minutes) into .cache/containerd/, found there after.
integration: build containerd
	CGPROCFS_BIN=$(CURDIR)/bin/cgprocfs CGPROCFS_CONTAINERD_BIN=$$(hack/containerd.sh) \
		$(GO) test -count=1 -v -timeout 20m ./integration/

containerd:
	hack/containerd.sh >/dev/null

test-v2: gofuse-patch
	hack/vm/run.sh

# Runs every fuzz target for $(FUZZTIME).
fuzz: gofuse-patch
	hack/fuzz.sh $(FUZZTIME)

bench: build
	hack/deps.sh bench
	$(GO) run ./hack/bench -bin bin/cgprocfs

clean:
	rm -rf bin

# Installs the binary, the OCI hooks.d file for podman and CRI-O (pointing
# at the installed binary) and, when deploy/systemd has it, the unit.
install: $(if $(filter bin/cgprocfs,$(BINARY)),build)
	install -D -m 0755 $(BINARY) $(DESTDIR)$(PREFIX)/bin/cgprocfs
	install -d -m 0755 $(DESTDIR)$(HOOKSDIR)
	sed 's|"/usr/local/bin/cgprocfs"|"$(PREFIX)/bin/cgprocfs"|' deploy/oci-hooks.d/cgprocfs.json >$(DESTDIR)$(HOOKSDIR)/cgprocfs.json
	chmod 0644 $(DESTDIR)$(HOOKSDIR)/cgprocfs.json
	if [ -f deploy/systemd/cgprocfs.service ]; then \
		install -d -m 0755 $(DESTDIR)$(SYSTEMDDIR) && \
		sed 's|/usr/local/bin/cgprocfs|$(PREFIX)/bin/cgprocfs|g' deploy/systemd/cgprocfs.service >$(DESTDIR)$(SYSTEMDDIR)/cgprocfs.service && \
		chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/cgprocfs.service; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cgprocfs $(DESTDIR)$(HOOKSDIR)/cgprocfs.json $(DESTDIR)$(SYSTEMDDIR)/cgprocfs.service
