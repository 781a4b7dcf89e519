#!/usr/bin/env bash
# Install the frozen GANAD Clinic (the folder this script is in, dist/ganad/ of `make installer`) on Linux:
# the folder to PREFIX, `ganad` on the PATH, and the menu entry with its icon.
#
#   sudo ./install.sh                 # PREFIX=/opt/ganad-clinic, for every user
#   ./install.sh                      # not root: ~/.local/opt/ganad-clinic, for this user only
#   PREFIX=... BIN_DIR=... SHARE_DIR=... ./install.sh   # elsewhere
#
# No Python is needed on the machine. The data folder (database, models, heat maps) is not here: it is
# the user's ($XDG_DATA_HOME/ganad-clinic, i.e. ~/.local/share/ganad-clinic) unless --home or
# GANAD_HOME says otherwise, exactly as for the pip-installed package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
test -x "$here/ganad" || { echo "install.sh: run it from the built folder (dist/ganad)" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    prefix="${PREFIX:-/opt/ganad-clinic}"
    bin_dir="${BIN_DIR:-/usr/local/bin}"
    share_dir="${SHARE_DIR:-/usr/local/share}"
else
    prefix="${PREFIX:-$HOME/.local/opt/ganad-clinic}"
    bin_dir="${BIN_DIR:-$HOME/.local/bin}"
    share_dir="${SHARE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}}"
fi

if [ "$here" != "$prefix" ]; then
    rm -rf "$prefix"
    mkdir -p "$(dirname "$prefix")"
    cp -a "$here" "$prefix"
fi
mkdir -p "$bin_dir" "$share_dir/applications" "$share_dir/icons/hicolor/256x256/apps"
ln -sf "$prefix/ganad" "$bin_dir/ganad"
install -m 644 "$here/ganad-clinic.png" "$share_dir/icons/hicolor/256x256/apps/ganad-clinic.png"
sed "s|/opt/ganad-clinic|$prefix|g" "$here/ganad-clinic.desktop" > "$share_dir/applications/ganad-clinic.desktop"
chmod 644 "$share_dir/applications/ganad-clinic.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$share_dir/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$share_dir/icons/hicolor" 2>/dev/null || true
echo "GANAD Clinic installed in $prefix; \`ganad\` in $bin_dir; menu entry \"GANAD Clinic\""
