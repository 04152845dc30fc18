#!/usr/bin/env bash
# Installs promtool/prometheus (Debian package prometheus) and amtool (prometheus-alertmanager) for the
# monitoring tests (tests/monitoring/), if they are missing. Idempotent. Debian's packages may start system
# services on install; they are stopped and disabled again, so nothing holds ports 9090/9093/9100.
set -euo pipefail

packages=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v amtool >/dev/null 2>&1 || packages+=(prometheus-alertmanager)

if ((${#packages[@]} == 0)); then
  echo "monitoring tools present: $(command -v promtool) $(command -v amtool)"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing ${packages[*]}"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"

# Stop and disable whatever the packages started (only these units, only if they exist).
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
    "${sudo[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done

promtool --version | head -n 1
amtool --version 2>&1 | head -n 1
