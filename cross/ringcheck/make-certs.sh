#!/usr/bin/env bash
# Makes a throw-away test CA (RSA-2048) and a server certificate and key
# (ECDSA P-256, for "ringcheck.test") in OUTDIR, for ringcheck's in-memory
# TLS sessions. Made at build time rather than committed: no private key in
# the repository. Kept when already there.
#   cross/ringcheck/make-certs.sh OUTDIR
set -euo pipefail
out=${1:?usage: make-certs.sh OUTDIR}
[ -s "$out/ca.pem" ] && [ -s "$out/server.pem" ] && [ -s "$out/server.key" ] && exit 0
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 \
    -subj "/CN=rocketchatd ringcheck test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server.key"
openssl req -new -key "$tmp/server.key" -subj "/CN=ringcheck.test" -out "$tmp/server.csr"
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:ringcheck.test" >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null
mv "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server.key" "$out/"
