#!/usr/bin/env bash
# browser-step.sh JOURNEY_URL: the README's one manual step, for go test ./docs.
# It does with curl what a person does in the browser, through the same
# public pages and calls the browser makes: on the hosted journey page, the
# sandbox bank (preselected) and Maria's CPF and name, Continuar; the
# holder's authorize and the sandbox partner app, where Maria logs in
# (password sandbox); the WebView's login and approval (the calls its
# script makes); the holder's redirect to /journey/callback, whose script
# posts the fragment. It prints where the browser ends up:
# PONTE/sandbox/done?id=…&status=FINISHED.
set -euo pipefail
journey=$1 document=47742663023 name='Maria da Silva'
ua='Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
browse() { curl -sS --fail-with-body -A "$ua" -b "$jar" -c "$jar" "$@"; }
base=$(echo "$journey" | sed -E 's#^(https?://[^/]+).*#\1#')
page=$(echo "$journey" | sed -E 's#^https?://[^/]+([^?]*).*#\1#')
id=$(echo "$journey" | sed -E 's/.*[?&]id=([^&]+).*/\1/')
token=$(echo "$journey" | sed -E 's/.*[?&]token=([^&]+).*/\1/')

brand=$(browse "$journey" | grep -o 'name="brandId" value="[^"]*" checked' | sed -E 's/.*value="([^"]*)".*/\1/')
authorize=$(browse -o /dev/null -w '%{redirect_url}' --data-urlencode "id=$id" --data-urlencode "token=$token" \
  --data-urlencode "brandId=$brand" --data-urlencode "document=$document" --data-urlencode "name=$name" "$base$page/confirm")
deeplink=$(browse -o /dev/null -w '%{redirect_url}' "$authorize")
request_uri=$(echo "$deeplink" | sed -E 's/.*[?&]request_uri=([^&]+).*/\1/')
client_id=$(echo "$deeplink" | sed -E 's/.*[?&]client_id=([^&]+).*/\1/')
webview=$(browse -o /dev/null -w '%{redirect_url}' --data "request_uri=$request_uri&client_id=$client_id" \
  --data-urlencode "document=$document" --data-urlencode "password=sandbox" "$base/sandbox/partner-app")
login=$(echo "$webview" | sed -E 's/.*#accessToken=([^&]+).*/\1/')
html=$(browse "${webview%%#*}")
interaction=$(echo "$html" | grep -o 'data-interaction="[^"]*"' | head -1 | cut -d'"' -f2)
client=$(echo "$html" | grep -o 'data-client="[^"]*"' | head -1 | cut -d'"' -f2)
api="$base/api/$client/consents/v1/interactions/$interaction" # client: the partner's slug, URL-safe
device='{"platform":"APP","os":"IOS","osVersion":"17.5"}'
browse -o /dev/null -H "Origin: $base" -H 'Content-Type: application/json' \
  -d "{\"accessToken\":\"$login\",\"device\":$device}" "$api/login"
approved=$(browse -H "Origin: $base" -H 'Content-Type: application/json' \
  -d "{\"partialApproval\":false,\"debtorAccount\":{\"ispb\":\"37241230\",\"issuer\":\"0001\",\"number\":\"1234567\",\"accountType\":\"CACC\"},\"device\":$device}" \
  "$api/consent")
back=$(browse -o /dev/null -w '%{redirect_url}' "$(echo "$approved" | sed -E 's/.*"redirectUri":"([^"]+)".*/\1/')")
browse -o /dev/null -w '%{redirect_url}\n' --data "${back#*#}" "${back%%#*}"
