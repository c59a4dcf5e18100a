#!/usr/bin/env bash
# Runs a command in a fresh network namespace that has only loopback (lo, up): browser and network
# tests cannot reach anything but this machine.
#   scripts/netns.sh <command> [args...]
# As root: `unshare -n`; otherwise an unprivileged user namespace too (`unshare -rn`). Inside, the
# environment has MATRIX_P2P_NETNS=1, and a nested call just runs the command.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi
if [ "${MATRIX_P2P_NETNS:-}" = 1 ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ]; then flags=(-n); else flags=(-r -n); fi
# shellcheck disable=SC2016
exec unshare "${flags[@]}" -- env MATRIX_P2P_NETNS=1 bash -c '
  set -e
  if command -v ip >/dev/null 2>&1; then ip link set lo up
  elif command -v ifconfig >/dev/null 2>&1; then ifconfig lo up
  else echo "netns.sh: neither ip nor ifconfig is installed (apt-get install iproute2)" >&2; exit 1
  fi
  exec "$@"
' netns "$@"
