#!/usr/bin/env bash
# Regenerates the self-signed test certificates of issue 13 (run from this directory).
# Made the common way, with `openssl req -x509`, which marks them CA:TRUE;
# committed, so the tests need no openssl. P-256 keys.
set -euo pipefail
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

# For localhost and 127.0.0.1, valid 100 years: pinned with --ca-file, it is accepted.
key self-signed
openssl req -x509 -new -key self-signed.key -out self-signed.pem -days 36500 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"

# For another name: pinned, it is still refused (the host name is checked).
key self-signed-other-name
openssl req -x509 -new -key self-signed-other-name.key -out self-signed-other-name.pem \
  -days 36500 -subj /CN=chat.example.org -addext "subjectAltName=DNS:chat.example.org"

# Expired in 2021: pinned, it is still refused (the dates are checked). `openssl req`
# 3.0 has no start date option, so `openssl ca -selfsign` signs the same request.
key self-signed-expired
openssl req -new -key self-signed-expired.key -out expired.csr -subj /CN=localhost
work=$(mktemp -d)
touch "$work/index.txt"
cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = p
x509_extensions = ext
[p]
commonName = supplied
[ext]
basicConstraints = critical,CA:TRUE
subjectAltName = DNS:localhost,IP:127.0.0.1
CNF
echo 01 >"$work/serial"
openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile self-signed-expired.key \
  -in expired.csr -out self-signed-expired.pem -notext \
  -startdate 20200101000000Z -enddate 20210101000000Z
rm -rf "$work" expired.csr
