#!/bin/sh
# mktoken.sh DIR [LABEL] - make a private SoftHSM2 token in DIR.
#
# For humans and CI: writes DIR/softhsm2.conf (token directory DIR/tokens),
# initialises a token LABEL (default "sigillo") with random SO and user PINs
# kept in DIR/pins.json (mode 0600, the same file hsm.ProvisionSoftHSM
# reads, so both can share a DIR), and prints shell lines to use it:
#
#   eval "$(softhsm-test/mktoken.sh /tmp/tok)"
#
# Nothing outside DIR is touched. Running it again reuses DIR's PINs and
# does not re-initialise an existing token.
set -eu

usage() { echo "usage: $0 DIR [LABEL]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
dir=$1
label=${2:-sigillo}

command -v softhsm2-util >/dev/null 2>&1 || {
	echo "$0: softhsm2-util not found (Debian/Ubuntu: apt-get install softhsm2)" >&2
	exit 1
}

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
conf=$dir/softhsm2.conf
if [ ! -f "$conf" ]; then
	cat >"$conf" <<CONF
# Private SoftHSM2 configuration written by sigillo softhsm-test/mktoken.sh.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
export SOFTHSM2_CONF="$conf"

pins=$dir/pins.json
if [ -f "$pins" ]; then
	so_pin=$(sed -n 's/.*"so_pin": *"\([^"]*\)".*/\1/p' "$pins")
	user_pin=$(sed -n 's/.*"user_pin": *"\([^"]*\)".*/\1/p' "$pins")
	[ -n "$so_pin" ] && [ -n "$user_pin" ] || { echo "$0: cannot read PINs from $pins" >&2; exit 1; }
else
	so_pin=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	user_pin=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	printf '{\n  "so_pin": "%s",\n  "user_pin": "%s"\n}\n' "$so_pin" "$user_pin" >"$pins"
fi

if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label: *$label *\$"; then
	softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$user_pin" >&2
fi

module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
	/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
	/usr/lib/pkcs11/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
	if [ -f "$m" ]; then module=$m; break; fi
done

cat <<OUT
export SOFTHSM2_CONF='$conf'
export SIGILLO_PKCS11_MODULE='$module'
export SIGILLO_PKCS11_TOKEN='$label'
export SIGILLO_PKCS11_PIN='$user_pin'
# SO PIN: $so_pin (also in $pins)
OUT
