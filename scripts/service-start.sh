#!/bin/sh
# `npm start` and the Docker image's command, copied to dist/bundle/start.sh by
# scripts/build-service.ts: starts the service from its V8 startup snapshot
# (service.blob, scripts/service-snapshot.ts) when this node can use it, else from
# the bundle and its code cache (service.js, scripts/service-launcher.ts).
#
# Node refuses a snapshot built by another Node version or with other V8 flags (it
# exits 14 before running anything), and this shell cannot take that back once it has
# exec'd node; so the snapshot is used only when nothing can make node refuse it:
#   - the build wrote service.blob.node (last, after the blob itself) and it names
#     the version of this node;
#   - NODE_OPTIONS is empty: V8 flags there (--max-old-space-size, ...) make V8
#     refuse the blob, and telling them from Node's own flags here is not worth it;
#   - RINGMASTER_SNAPSHOT is not 0 (an operator's way back to the code-cache start).
# node replaces this shell (exec), so signals reach it directly, as before.
case "$0" in
  */*) here=${0%/*} ;;
  *) here=. ;;
esac
if [ "${RINGMASTER_SNAPSHOT:-1}" != 0 ] && [ -z "${NODE_OPTIONS:-}" ] && [ -r "$here/service.blob" ] &&
  [ -r "$here/service.blob.node" ] && read -r built <"$here/service.blob.node" && [ "$built" = "$(node --version)" ]; then
  exec node --snapshot-blob "$here/service.blob" "$here/service.js" "$@"
fi
exec node "$here/service.js" "$@"
