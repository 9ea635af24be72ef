# syntax=docker/dockerfile:1
# Build: the PKCS#11 binding needs cgo, so build on the Debian-based Go image
# and run on the same Debian release.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/sigillo ./cmd/sigillo

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 p11-kit-modules ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/sigillo --create-home sigillo
COPY --from=build /out/sigillo /usr/local/bin/sigillo
USER sigillo
WORKDIR /var/lib/sigillo
# Embedded dev defaults live in the data dir; production sets SIGILLO_MODE=production,
# SIGILLO_DATABASE=postgres://..., SIGILLO_PKCS11_*, SIGILLO_ADMIN_TOKEN, SIGILLO_AUTH_SECRET_KEY,
# an SMS webhook (SIGILLO_OTP_*) and an SMTP server (SIGILLO_EMAIL_*): see README.
ENV SIGILLO_LISTEN=0.0.0.0:8080 \
    SIGILLO_DATA_DIR=/var/lib/sigillo/var \
    SIGILLO_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/sigillo", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/sigillo"]
CMD ["serve"]
