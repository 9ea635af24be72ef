# sigillo: the two commands a newcomer types are `make run` and `make test`.
GO ?= go

.PHONY: run test lint bench build fuzz

## run: install what is missing, then serve on the embedded dev defaults
run:
	scripts/setup.sh
	$(GO) run ./cmd/sigillo serve

## test: the whole suite on real SoftHSM2, SQLite, PostgreSQL and validators
test:
	scripts/test.sh

## build: the sigillo binary in ./bin
build:
	$(GO) build -o bin/sigillo ./cmd/sigillo

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the Go benchmarks quoted in docs/BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./hsm/ ./csc/ ./ca/ ./cahttp/ ./pades/ ./audit/

## fuzz: a bounded run of every fuzz target (seed corpora are in testdata/)
fuzz:
	scripts/fuzz.sh 20000x
