#!/usr/bin/env bash
# scripts/install and scripts/uninstall, for real (as root; run by scripts/test after the build):
#  1. a staged install (--root): the tree, owners and modes, the generated config; an upgrade
#     keeps an edited config; uninstall keeps config and data.
#  2. the README's server commands in a private mount namespace where /opt/voxd, /etc/voxd,
#     /var/lib/voxd and /etc/systemd/system are temporary directories: download-models (test
#     set), install, `voxd check` as the voxd user on the installed config, upgrade, uninstall,
#     uninstall --purge. Nothing is left on this machine (the voxd user is removed again if this
#     test created it; systemd is not PID 1 here, so no service is ever started).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "install test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root"
[ -x target/release/voxd ] || fail "build first (scripts/setup)"

TMP=$(mktemp -d)
had_user=0
getent passwd voxd >/dev/null && had_user=1
made_dirs=()
cleanup() {
  for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$TMP"
  if [ $had_user = 0 ]; then
    ! getent passwd voxd >/dev/null || userdel voxd
    ! getent group voxd >/dev/null || groupdel voxd
  fi
}
trap cleanup EXIT

mode() { stat -c '%a %U:%G' "$1"; }
expect_mode() { [ "$(mode "$1")" = "$2" ] || fail "$1 is $(mode "$1"), expected $2"; }

echo "== staged install (--root)"
S=$TMP/stage
scripts/install --root "$S" > "$TMP/log1"
expect_mode "$S/opt/voxd/bin/voxd" "755 root:root"
expect_mode "$S/opt/voxd/lib/libonnxruntime.so.1.24.4" "644 root:root"
expect_mode "$S/opt/voxd/bin/espeak-ng-data" "755 root:root"
[ -f "$S/opt/voxd/bin/espeak-ng-data/phontab" ] || fail "espeak-ng-data incomplete"
expect_mode "$S/etc/voxd/voxd.toml" "640 root:voxd"
expect_mode "$S/var/lib/voxd" "750 voxd:voxd"
expect_mode "$S/var/lib/voxd/models" "755 root:root"
expect_mode "$S/etc/systemd/system/voxd.service" "644 root:root"
cmp -s systemd/voxd.service "$S/etc/systemd/system/voxd.service" || fail "unit differs"
cmp -s models/test/libonnxruntime.so.1.24.4 "$S/opt/voxd/lib/libonnxruntime.so.1.24.4" || fail "ORT differs"
grep -qx 'onnxruntime = "/opt/voxd/lib/libonnxruntime.so.1.24.4"' "$S/etc/voxd/voxd.toml" || fail "ORT path"
expect_mode "$S/etc/voxd/credentials" "700 root:root"
for key in server.scenario_token server.admin_token; do
  expect_mode "$S/etc/voxd/credentials/$key" "600 root:root"
  grep -Eqx '[A-Za-z0-9_-]{40,}' "$S/etc/voxd/credentials/$key" || fail "no random $key"
done
[ "$(ls "$S/etc/voxd/credentials" | wc -l)" = 2 ] || fail "credentials other than the two tokens"
cmp -s "$S/etc/voxd/credentials/server.scenario_token" "$S/etc/voxd/credentials/server.admin_token" &&
  fail "the two tokens are the same"
for key in token scenario_token admin_token; do
  grep -qx "$key = \"\"" "$S/etc/voxd/voxd.toml" || fail "voxd.toml sets $key (tokens are credentials)"
done
grep -qx 'database = "/var/lib/voxd/voxd.db"' "$S/etc/voxd/voxd.toml" || fail "history database not under /var/lib/voxd"
grep -qx 'index = "/var/lib/voxd/kb"' "$S/etc/voxd/voxd.toml" || fail "knowledge base not under /var/lib/voxd"
grep -q 'no daemon-reload' "$TMP/log1" || fail "daemon-reload without systemd"
getent passwd voxd | grep -q ':/var/lib/voxd:/usr/sbin/nologin$' || fail "voxd user"

echo "== upgrade keeps the edited config"
sed -i 's/^bind = .*/bind = "0.0.0.0:8443"/' "$S/etc/voxd/voxd.toml"
cp "$S/etc/voxd/voxd.toml" "$TMP/edited.toml"
cp -a "$S/etc/voxd/credentials" "$TMP/credentials"
scripts/install --root "$S" > "$TMP/log2"
cmp -s "$TMP/edited.toml" "$S/etc/voxd/voxd.toml" || fail "the upgrade overwrote the config"
diff -r "$TMP/credentials" "$S/etc/voxd/credentials" || fail "the upgrade changed the credentials"
grep -q "kept your $S/etc/voxd/voxd.toml" "$TMP/log2" || fail "no 'kept' message"
grep -qx 'bind = "127.0.0.1:8080"' "$S/etc/voxd/voxd.toml.example" || fail "no new example beside it"

echo "== uninstall keeps config and data"
scripts/uninstall --root "$S" > /dev/null
[ ! -e "$S/opt/voxd" ] || fail "/opt/voxd left"
[ ! -e "$S/etc/systemd/system/voxd.service" ] || fail "unit left"
[ -f "$S/etc/voxd/voxd.toml" ] && [ -d "$S/var/lib/voxd" ] || fail "config or data removed"

echo "== the README's commands in a private mount namespace"
R=$TMP/real
for d in /opt/voxd /etc/voxd /var/lib/voxd /etc/systemd/system; do
  mkdir -p "$R$d"
  if [ ! -d "$d" ]; then mkdir -p "$d"; made_dirs+=("$d"); fi
done
export R had_user
unshare --mount --propagation private bash -euo pipefail -c '
  fail() { echo "install test: FAIL: $*" >&2; exit 1; }
  for d in /opt/voxd /etc/voxd /var/lib/voxd /etc/systemd/system; do mount --bind "$R$d" "$d"; done
  scripts/download-models --set test --dir /var/lib/voxd/models 2> "$R/download.log"
  scripts/install > "$R/install.log"
  grep -q "with the models of /var/lib/voxd/models/voxd-models.toml" "$R/install.log" ||
    fail "the config did not take the downloaded set"
  grep -qx "stt = \"/var/lib/voxd/models/ggml-tiny.en.bin\"" /etc/voxd/voxd.toml || fail "stt path"
  runuser -u voxd -- /opt/voxd/bin/voxd --config /etc/voxd/voxd.toml check > "$R/check.log" ||
    { cat "$R/check.log"; fail "voxd check as the voxd user"; }
  for want in "stt: ok" "llm: ok" "tts: ok" "all engines load" \
      "/var/lib/voxd/models/ggml-tiny.en.bin: present, 77.7 MB, sha256 ok (/var/lib/voxd/models/SHA256SUMS)" \
      "/opt/voxd/lib/libonnxruntime.so.1.24.4: present, 22.2 MB, sha256 ok (/opt/voxd/lib/SHA256SUMS)" \
      "language: en (manifest.toml)" "language: en_US (espeak-ng voice en-us)"; do
    grep -qF "$want" "$R/check.log" || { cat "$R/check.log"; fail "check output lacks: $want"; }
  done
  # On a public address the tokens are needed: the credentials systemd would pass hold them.
  ! VOXD_SERVER_BIND=0.0.0.0:8080 /opt/voxd/bin/voxd --config /etc/voxd/voxd.toml check \
    > "$R/public.log" 2>&1 || fail "a public address without tokens passed the check"
  grep -q "server.token is empty" "$R/public.log" || { cat "$R/public.log"; fail "public.log"; }
  CREDENTIALS_DIRECTORY=/etc/voxd/credentials VOXD_SERVER_BIND=0.0.0.0:8080 \
    /opt/voxd/bin/voxd --config /etc/voxd/voxd.toml check > "$R/public.log" 2>&1 ||
    { cat "$R/public.log"; fail "voxd check with the installed credentials"; }
  ! runuser -u voxd -- ls /etc/voxd/credentials >/dev/null 2>&1 || fail "voxd reads the credentials"
  runuser -u voxd -- touch /var/lib/voxd/state || fail "voxd cannot write its data directory"
  ! runuser -u voxd -- touch /var/lib/voxd/models/x 2>/dev/null || fail "voxd can write the models"
  ! runuser -u voxd -- cat /etc/shadow >/dev/null 2>&1 || fail "voxd reads /etc/shadow"
  scripts/download-models --set test --dir /var/lib/voxd/models 2> "$R/download2.log"
  grep -q "0 file(s) downloaded" "$R/download2.log" || fail "second download-models run downloaded"
  install -D -m 0644 systemd/voxd-gpu.conf /etc/systemd/system/voxd.service.d/gpu.conf
  scripts/install > /dev/null
  [ -f /etc/systemd/system/voxd.service.d/gpu.conf ] || fail "the upgrade removed the GPU drop-in"
  scripts/uninstall > /dev/null
  [ ! -e /etc/systemd/system/voxd.service.d ] || fail "uninstall left the drop-in"
  [ ! -e /opt/voxd/bin/voxd ] && [ -f /etc/voxd/voxd.toml ] || fail "uninstall"
  [ "$had_user" = 1 ] && exit 0  # a voxd user was here before: leave it
  scripts/uninstall --purge > /dev/null
  [ ! -e /etc/voxd/voxd.toml ] && [ ! -e /var/lib/voxd/models ] || fail "uninstall --purge"
  ! getent passwd voxd > /dev/null || fail "--purge kept the voxd user"
'
echo "install test: ok"
