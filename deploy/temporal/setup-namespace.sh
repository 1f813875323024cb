#!/bin/sh
# One-shot once the Temporal server is healthy (compose service `temporal-admin-tools`): creates
# the namespace the app uses and registers its custom search attributes, so an admin can find a
# device's or a rollout's workflow in the Temporal UI. SEARCH_ATTRIBUTES is "Name=Type ..." and is
# kept equal to domain/search-attributes.ts by test/docker-compose.test.ts.
# Idempotent (runs on every `docker compose up`): an existing namespace is left alone, and the CLI
# accepts an attribute that already exists with the same type (a different type is an error).
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
RETENTION="${NAMESPACE_RETENTION:-720h}"

# The server's port opens before every role is serving, and a namespace just created takes a few
# seconds to reach every frontend cache: retry instead of failing the stack on a race.
retry() {
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge 60 ]; then
      echo "temporal-admin-tools: giving up on: $*" >&2
      return 1
    fi
    attempt=$((attempt + 1))
    sleep 2
  done
}

cli() { temporal "$@" --address "$TEMPORAL_ADDRESS"; }

retry cli operator cluster health

if cli operator namespace describe -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "temporal-admin-tools: namespace $TEMPORAL_NAMESPACE exists"
else
  echo "temporal-admin-tools: creating namespace $TEMPORAL_NAMESPACE (retention $RETENTION)"
  cli operator namespace create -n "$TEMPORAL_NAMESPACE" --retention "$RETENTION"
fi

# One create call with every --name/--type pair.
set --
for pair in $SEARCH_ATTRIBUTES; do
  set -- "$@" --name "${pair%%=*}" --type "${pair#*=}"
done

# Every attribute listed with its type (the list is a table: "  Name   Type").
all_registered() {
  listing="$(cli operator search-attribute list -n "$TEMPORAL_NAMESPACE")" || return 1
  for pair in $SEARCH_ATTRIBUTES; do
    echo "$listing" | grep -Eq "^[[:space:]]*${pair%%=*}[[:space:]]+${pair#*=}[[:space:]]*$" || return 1
  done
}

# A server that answers "already exists" for an identical attribute still counts as registered.
register() {
  cli operator search-attribute create -n "$TEMPORAL_NAMESPACE" "$@" || all_registered
}

retry register "$@"
retry all_registered
echo "temporal-admin-tools: search attributes registered: $SEARCH_ATTRIBUTES"
