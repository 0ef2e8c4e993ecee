#!/bin/sh
# The README's "Try it", runnable as it stands: `sh scripts/try-it.sh` while `npm start` runs
# (with the server's PORT, if not the default). A test runs this file against a fresh server
# and checks every step, so the README's copy below the line works when pasted.
set -eu
cd "$(dirname "$0")/.."
# ----------------------------------------------------------------------------------------

API=http://127.0.0.1:${PORT:-54321}/functions/v1/secrets
# -sS --fail-with-body: a failed step shows curl's error and the answer (and stops this script)
api() { curl -sS --fail-with-body -w '\n' "$@"; }
# shows an answer and keeps its data.id (no jq needed: node is here already)
idOf() { node -e 'const a = require("fs").readFileSync(0, "utf8"); console.error(a.trim());
  try { console.log(JSON.parse(a).data.id) } catch { process.exit(1) }'; }

api "$API/health"
TOKEN=$(npm run -s token -- alice@example.com)   # creates the user if missing
BOB=$(npm run -s token -- bob@example.com)

ID=$(api -X POST "$API" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"OPENAI_API_KEY","value":"sk-live-123","secretType":"api_key","tags":["prod"]}' | idOf)
api "$API/$ID/value" -H "Authorization: Bearer $TOKEN"
api -X PUT "$API/$ID/permissions" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"email":"bob@example.com","permission":"read"}'
api "$API/$ID/value" -H "Authorization: Bearer $BOB"
api "$API/audit?secretId=$ID" -H "Authorization: Bearer $TOKEN"
api -X DELETE "$API/$ID" -H "Authorization: Bearer $TOKEN"   # soft delete, so the block runs again; undo: POST $API/$ID/restore
