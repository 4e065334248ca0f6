# Keywarden — `make run` starts the server with its embedded defaults,
# `make test` installs what the interop tests need (or names it) and runs them all.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Fuzzing is bounded by executions, not by wall time: a duration -fuzztime races the
# coordinator's deadline in Go 1.26 (golang/go#75804) and fails with no crasher.
FUZZTIME ?= 100000x

.PHONY: all build run test unit deps fuzz bench lint clean test-host-vm

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/keywarden ./cmd/keywarden
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/keywarden-host ./cmd/keywarden-host

run: build
	$(BIN)/keywarden serve $(ARGS)

# Debian packages (apt-get when missing), and a Vault server built from the Go
# module proxy for the Transit master-key tests (cached; minutes the first time).
deps:
	@tests/ensure-deps.sh
	@tests/build-vault.sh >/dev/null

# The concurrent core (rules, store, protocol adapters) also runs under the race detector.
RACE_PKGS := ./kms/... ./consumers/ ./crypto/ ./barbican/ ./kmip/

test: deps
	$(GO) vet ./...
	KEYWARDEN_REQUIRE_VAULT=1 $(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v '/tests/hostvm$$')
	$(MAKE) test-host-vm
	KEYWARDEN_REQUIRE_VAULT=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(MAKE) fuzz

# Only the device-mapper tests, in Debian's kernel under qemu (tests/hostvm; also part of
# `make test`). Prints the VM's boot and test times.
test-host-vm:
	@tests/ensure-deps.sh
	$(GO) test -count=1 -v -timeout 15m -run TestHostVM ./tests/hostvm/

unit:
	$(GO) test -short -count=1 ./...

FUZZ_PKGS := ./kmip/ ./barbican/

fuzz:
	@for p in $(FUZZ_PKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$p $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./crypto/ ./kms/... ./barbican/ ./kmip/
	$(BIN)/keywarden bench --clients 32 --duration 10s

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf $(BIN)
