#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with a few seeds made from ../fixtures. Idempotent; the corpora are
# not in git (see .gitignore). Usage: ./seed-corpus.sh [target...]   (default: every target)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fx="$here/../fixtures"
cd "$here"

# seed TARGET NAME: writes stdin to corpus/TARGET/seed-NAME.
seed() { mkdir -p "corpus/$1"; cat > "corpus/$1/seed-$2"; }

# The prediction, page and error targets read "STATUS\nname: value\n...\n\nBODY" (see src/lib.rs).
seed_prediction() {
  local f
  for f in "$fx"/predictions/*.json "$fx"/seed/get_response.json "$fx"/seed/create_response.json; do
    { printf '200\n\n'; cat "$f"; } | seed prediction "$(basename "$f" .json)"
  done
  { printf '201\n\n'; cat "$fx/seed/create_response.json"; } | seed prediction created
  { printf '404\n\n'; cat "$fx/errors/404.json"; } | seed prediction not-found
}

seed_page() {
  local f
  for f in "$fx"/pages/*.json; do
    { printf '200\n\n'; cat "$f"; } | seed page "$(basename "$f" .json)"
  done
  printf 'https://api.replicate.com/v1/predictions?cursor=cD0yMDI0LTA%%2BMQ%%3D%%3D&a=b#frag' | seed page next-url
}

seed_error() {
  { printf '429\nretry-after: 5\nratelimit-remaining: 0\nratelimit-reset: 12\n\n'; cat "$fx/errors/429.json"; } | seed error 429-seconds
  { printf '429\nretry-after: Wed, 21 Oct 2015 07:28:30 GMT\ndate: Wed, 21 Oct 2015 07:28:00 GMT\n\n'; cat "$fx/errors/429.json"; } | seed error 429-date
  { printf '503\nretry-after: 1.5\n\n'; cat "$fx/errors/502.html"; } | seed error 503-float
  { printf '502\ncontent-type: text/html\n\n'; cat "$fx/errors/502.html"; } | seed error 502-html
  local code
  for code in 401 404 422; do
    { printf '%s\n\n' "$code"; cat "$fx/errors/$code.json"; } | seed error "$code"
  done
}

# The sse target's input is an `arbitrary` struct: six zero bytes select the default limits, no
# pseudo-random chunking and no explicit cuts; the rest is the stream. The second form selects
# limits (line 16, event 64), seed 7 and one cut at 3.
seed_sse() {
  local f
  for f in "$fx"/sse/*.txt; do
    { printf '\x00\x00\x00\x00\x00\x00'; cat "$f"; } | seed sse "$(basename "$f" .txt)"
    { printf '\x01\x10\x40\x00\x07\x00\x00\x00\x01\x03\x00\x00'; cat "$f"; } | seed sse "$(basename "$f" .txt)-small"
  done
}

# The webhook target's input is an `arbitrary` struct that is impractical to write by hand: a few
# byte strings to start from.
seed_webhook() {
  cat "$fx/api/webhook_secret.json" | seed webhook secret-json
  printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw msg_p5jXN8AQM9LWM0D4loKWxJek 1614265330 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= {"test": 2432232314}' | seed webhook vector
}

seed_model_ref() {
  local s i=0
  for s in black-forest-labs/flux-schnell \
           lucataco/flux-schnell-lora:2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574 \
           dp-4d0bcc010b3049749a251855f12800be 1h30m45s 300 \
           https://proxy.example/replicate/v1/ 'http://LOCALHOST:8080//v1' https://api.replicate.com \
           'Wed, 21 Oct 2015 07:28:00 GMT' 'https://api.replicate.com/v1/predictions?cursor=abc%2B&x=1'; do
    printf '%s' "$s" | seed model_ref "$i"
    i=$((i + 1))
  done
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(prediction page error sse webhook model_ref)
for t in "${targets[@]}"; do
  "seed_$t"
done
