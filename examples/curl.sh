#!/usr/bin/env bash
# The gateway over plain HTTP: the OpenAI-compatible endpoints and the task API.
#   make serve                       # in another terminal (or any running gateway)
#   examples/curl.sh                 # BASE_URL=http://host:port/v1 API_KEY=sk-... to change
set -euo pipefail

BASE_URL="${BASE_URL:-${LLM_GATEWAY_BASE_URL:-http://localhost:8000/v1}}"
API_KEY="${API_KEY:-${LLM_GATEWAY_API_KEY:-}}"
headers=(-H 'Content-Type: application/json' -H 'x-request-id: curl-example-1')
if [[ -n "$API_KEY" ]]; then headers+=(-H "Authorization: Bearer $API_KEY"); fi

post() {  # post PATH JSON: print the answer (and fail on an HTTP error)
  curl -sS --fail-with-body "${headers[@]}" "$BASE_URL/$1" -d "$2"
  echo
}

main() {
  # The served model's name (the OpenAI endpoints need it; the task API defaults to it).
  model=$(curl -sS --fail-with-body "${headers[@]}" "$BASE_URL/models" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])')
  echo "== model: $model"

  echo "== /v1/chat/completions"
  post chat/completions '{"model": "'"$model"'", "temperature": 0, "max_tokens": 32,
    "messages": [{"role": "user", "content": "What is the capital of France?"}]}'

  echo "== /v1/completions, streaming (server-sent events, ends with data: [DONE])"
  curl -sSN --fail-with-body "${headers[@]}" "$BASE_URL/completions" -d '{
    "model": "'"$model"'", "prompt": "The capital of France is", "max_tokens": 8,
    "stream": true, "stream_options": {"include_usage": true}}'

  echo "== /v1/generate"
  post generate '{"prompt": "Once upon a time", "max_new_tokens": 24, "no_repeat_ngram_size": 3}'

  echo "== /v1/generate, streaming"
  curl -sSN --fail-with-body "${headers[@]}" "$BASE_URL/generate" \
    -d '{"prompt": "Once upon a time", "max_new_tokens": 8, "stream": true}'

  echo "== /v1/summarize"
  post summarize '{"text": "The city council met on Tuesday to vote on the new budget. After a long debate, the budget passed by seven votes to two. It funds two new parks and a library.", "style": "headline", "max_length": 40}'

  echo "== /v1/classify"
  post classify '{"texts": ["I love it", "It broke after a day"], "labels": "sentiment"}'

  echo "== /v1/chat"
  post chat '{"message": "Where is my order?", "preset": "customer_service", "max_tokens": 48}'

  echo "== an error: OpenAI-shaped, with the request id in x-request-id"
  curl -sS -i "${headers[@]}" "$BASE_URL/generate" -d '{"prompt": "Hi", "temperature": 0.5}' \
    | grep -iE '^(HTTP|x-request-id)|error'
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then  # run, not sourced
  main "$@"
fi
