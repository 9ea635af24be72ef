#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sigillo and its tests need, when any is
# missing. Runs apt-get as root, or through sudo. Go itself is assumed.
set -euo pipefail
pkgs=(softhsm2 opensc p11-kit p11-kit-modules openssl ca-certificates
      poppler-utils qpdf libnss3-tools postgresql chromium python3-aiosmtpd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
