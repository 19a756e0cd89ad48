#!/bin/sh
# Regenerates the PKCS#12 test fixtures: a P-256 root CA, an intermediate and a leaf, as DER,
# and the leaf key as unencrypted PKCS#8 DER. Run from this directory; needs OpenSSL 3.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key"; }
gen root; gen intermediate; gen leaf
openssl req -x509 -new -key "$tmp/root.key" -subj "/CN=certmill test root" -days 36500 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$tmp/root.pem"
openssl req -new -key "$tmp/intermediate.key" -subj "/CN=certmill test intermediate" \
  -out "$tmp/intermediate.csr"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' \
  > "$tmp/ca.ext"
openssl x509 -req -in "$tmp/intermediate.csr" -CA "$tmp/root.pem" -CAkey "$tmp/root.key" \
  -set_serial 2 -days 36500 -extfile "$tmp/ca.ext" -out "$tmp/intermediate.pem"
openssl req -new -key "$tmp/leaf.key" -subj "/CN=device-0001" -out "$tmp/leaf.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
  > "$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/intermediate.pem" -CAkey "$tmp/intermediate.key" \
  -set_serial 3 -days 36500 -extfile "$tmp/leaf.ext" -out "$tmp/leaf.pem"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/leaf.key" -outform DER -out leaf.pk8.der
for c in root intermediate leaf; do openssl x509 -in "$tmp/$c.pem" -outform DER -out "$c.der"; done
