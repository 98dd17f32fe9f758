#!/bin/sh
# `npm start` and the Docker image's command, copied to dist/bundle/start.sh by
# scripts/build-service.ts: starts the bundled service from V8's code cache
# (service.js, scripts/service-launcher.ts), with the arguments and NODE_OPTIONS
# given. node replaces this shell (exec), so signals (SIGTERM) reach it directly.
case "$0" in
  */*) here=${0%/*} ;;
  *) here=. ;;
esac
exec node "$here/service.js" "$@"
